/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  // The packed package is tested by npm run test:package (jest.package.config.js): it runs npm
  // and a compiler, and takes a minute.
  testPathIgnorePatterns: ['/node_modules/', '/test/setup/', '/test/fixtures/', '/test/package\\.test\\.ts$'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.test.json' }] },
  setupFiles: ['<rootDir>/test/setup/realm.ts'],
  globalSetup: '<rootDir>/test/setup/fresh.js',
  testTimeout: 60000,
  // Tests map memory and fork processes: two workers keep a 2-core machine responsive.
  maxWorkers: 2,
};
