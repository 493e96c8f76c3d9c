// Browser tests: a real `kefu serve` per test file, Debian's Chromium driven
// by playwright-core. One file at a time: the machine has two cores.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['e2e/**/*.e2e.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: false,
    pool: 'forks',
    // What a person sees settles within seconds on a loaded CI machine, not
    // within expect.poll's default of one.
    expect: { poll: { timeout: 10_000, interval: 100 } },
    // One more try for a test that failed: a real browser, a real server and
    // both cores shared can still miss a focus or a frame on a loaded run.
    // A test that fails twice fails the run.
    retry: 1,
  },
});
