// Mutation testing of the pure logic (`npm run mutation`): see the README's test section. Not part of `npm test`.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutation.config.ts' },
  plugins: ['@stryker-mutator/vitest-runner'],
  mutate: [
    'workflows/*/state.ts',
    'workflows/*/completion.ts',
    'workflows/sagas/routing.ts',
    'activities/sagas/effects-manifest.ts',
    // The egress' pure builders (subjects, headers, message ids, facts); publishing is marked off in the file.
    'activities/sagas/egress.ts',
    'workers/saga-streams.ts',
    // Its pure decisions (backoff, classification, filters, headers); the NATS part is marked off in the file.
    'workers/saga-bridge.ts',
    // The reload diff; the operations app itself is marked off in the file.
    'workers/ops-server.ts',
    'notify/*.ts',
    '!notify/default-templates.ts',
    'core/config.ts',
    'core/payload-codec.ts',
    'policy-engine/evaluate.ts',
    'policy-engine/model.ts',
    'activities/shared/outbound-policy.ts',
    'api/errors.ts',
    'api/plugins/*.ts',
  ],
  // Reports, incremental data and other runs' sandboxes live there; a sandbox needs none of it.
  ignorePatterns: ['/.data'],
  coverageAnalysis: 'perTest',
  incremental: true,
  incrementalFile: '.data/mutation/incremental.json',
  tempDirName: '.data/mutation/tmp',
  cleanTempDir: 'always',
  concurrency: 2,
  timeoutMS: 10_000,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: '.data/mutation/report.html' },
  jsonReporter: { fileName: '.data/mutation/report.json' },
  thresholds: { high: 90, low: 85, break: null },
};
