// Piscina worker entry when the prebuilt bundle (build/worker.mjs, see bundle.ts)
// cannot be used: registers tsx in this thread, then runs the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
const mod = await import('./worker.ts');
export default mod.default;
export const workerInfo = mod.workerInfo;
