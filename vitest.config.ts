import { defineConfig } from 'vitest/config';

// Native addons and userfaultfd: the `forks` pool (one process per file) is safe, `threads` is not.
export default defineConfig({
  test: {
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: false,
    reporters: ['default', './test/summary-reporter.ts'],
  },
});
