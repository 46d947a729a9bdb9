import { defineConfig } from 'vitest/config';

const kinds = ['unit', 'activities', 'workflows', 'replay', 'api', 'integration', 'e2e'] as const;
// Suites that start Temporal servers, bundle workflows or spawn the stack get more time.
const slow = new Set<string>(['workflows', 'replay', 'api', 'integration', 'e2e']);

export default defineConfig({
  test: {
    pool: 'forks',
    maxWorkers: 2,
    // Root-level only (projects do not extend the root), so servers are provisioned once per run.
    globalSetup: ['test/support/global-setup.ts'],
    reporters: ['verbose'],
    projects: kinds.map((kind) => ({
      test: {
        name: kind,
        include: [`test/${kind}/**/*.test.ts`],
        setupFiles: ['test/support/setup-file.ts'],
        testTimeout: slow.has(kind) ? 120_000 : 10_000,
        hookTimeout: slow.has(kind) ? 180_000 : 10_000,
      },
    })),
  },
});
