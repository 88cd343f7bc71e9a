'use strict';
// Runs in every test file (setupFilesAfterEnv). In a run with workers, this starts the watchdog of each worker
// process; in band, the global setup has already started it. Naming each test makes the watchdog's message say
// where a hang happened.
const { relative } = require('node:path');
const { processWatchdog } = require('./watchdog');

const file = relative(process.cwd(), expect.getState().testPath ?? '');
processWatchdog().note(`${file} (loading)`);
beforeEach(() => processWatchdog().note(`${file} › ${expect.getState().currentTestName}`));
afterAll(() => processWatchdog().note(`${file} (done)`));
