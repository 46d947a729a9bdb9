// The test run Stryker mutates against (`npm run mutation`): the unit project plus the API tests that need no
// server. Not used by `npm test`.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    pool: 'forks',
    include: ['test/unit/**/*.test.ts', 'test/api/*.inject.test.ts'],
    testTimeout: 10_000,
    hookTimeout: 10_000,
  },
});
