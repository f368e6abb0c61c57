import { defineConfig } from 'vitest/config';

// Two projects: `unit` runs anywhere; `kernel` needs root, network namespaces,
// real iptables/nft and (for CLUSTERIP) qemu, and runs serially.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['{sim,cli,bench,kernel-glue,reports,test,examples}/**/*.test.ts'],
          exclude: ['**/*.kernel.test.ts', '**/node_modules/**'],
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'kernel',
          include: ['{sim,cli,bench,kernel-glue,reports,test,examples}/**/*.kernel.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
