#!/usr/bin/env node
// Runs the TypeScript CLI directly (no build step): tsx's loader is registered
// for this process, then the entry point is imported.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
