// Mutation testing of the pure decisions (`npm run mutation`): each mutant is one small bug Stryker
// plants in a copy of the code; a test must fail for it. Not part of `npm test` or CI: it runs the
// unit files once per mutant, minutes rather than seconds.
//
// Only pure unit tests run here (no MariaDB, Redis or doubles): node:test files run directly
// through tsx, which prints TAP for the tap runner; each file is one "test" for coverage, so a
// mutant only reruns the files that reach its code.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  mutate: [
    'api/entitlement/decide.ts',
    'api/playback/rendition.ts',
    'api/signing/request.ts',
    'sentinel-hooks/decide.ts',
    'watcher/plan/**/*.ts',
  ],
  testRunner: 'tap',
  plugins: ['@stryker-mutator/tap-runner'],
  tap: {
    testFiles: [
      'test/unit/entitlement.test.ts',
      'test/unit/rendition.test.ts',
      'test/signing/request.test.ts',
      'test/sentinel-hooks/decide.test.ts',
      'test/watcher/plan.test.ts',
      'test/watcher/plan-policies.test.ts',
      'test/watcher/policy.test.ts',
    ],
    nodeArgs: ['--import', 'tsx', '--test-reporter=tap'],
  },
  coverageAnalysis: 'perTest',
  // Two cores shared with other test runs.
  concurrency: 1,
  // Reruns only retest mutants whose code or tests changed; the file is kept out of git.
  incremental: true,
  incrementalFile: 'reports/mutation/stryker-incremental.json',
  reporters: ['clear-text', 'progress', 'html'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  thresholds: { high: 95, low: 90, break: 90 },
  tempDirName: '.stryker-tmp',
  // The sandbox copies only what the unit files load: several people work in this tree, and a
  // scratch file that vanishes between Stryker's listing and its copy stops the whole run.
  ignorePatterns: [
    '/*',
    '!/api',
    '!/common',
    '!/watcher',
    '!/sentinel-hooks',
    '!/test',
    '!/package.json',
    '!/tsconfig.json',
    '/test/*',
    '!/test/unit',
    '!/test/signing',
    '!/test/sentinel-hooks',
    '!/test/watcher',
    '.*',
  ],
};
