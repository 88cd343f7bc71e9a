'use strict';
// A native deadlock on the main thread (seen in Node's crypto) never returns to JavaScript, so no Jest timeout
// can fire and CI would wait for its own limit. A worker thread has its own event loop: it expects a heartbeat
// from the main thread and, when none comes for `timeoutMs`, says so on stderr and kills the process.
const workerThreads = require('node:worker_threads');
const timers = require('node:timers');
const inspector = require('node:inspector');

// Written to fd 2 with writeSync: a worker's process.stderr goes through the main thread, which is the one stuck.
const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const { writeSync } = require('node:fs');
const { beats, timeoutMs, checkMs } = workerData;
const now = () => Number(process.hrtime.bigint() / 1000000n);
let seen = Atomics.load(beats, 0);
let lastBeat = now();
let current = '(no test started yet)';
parentPort.on('message', (label) => {
  current = String(label);
});
setInterval(() => {
  const count = Atomics.load(beats, 0);
  if (count !== seen) {
    seen = count;
    lastBeat = now();
    return;
  }
  const stalled = now() - lastBeat;
  if (stalled < timeoutMs) return;
  writeSync(
    2,
    '\\n[test watchdog] The main thread has not run for ' + Math.round(stalled / 1000) + ' s (limit ' + Math.round(timeoutMs / 1000) + ' s): ' +
      'it is blocked outside JavaScript, e.g. a native deadlock, so no Jest timeout can fire.\\n' +
      '[test watchdog] Last started: ' + current + '\\n' +
      '[test watchdog] Killing process ' + process.pid + ' with SIGKILL. Set A2A_TEST_WATCHDOG_SECONDS to change the limit (0: off).\\n',
  );
  process.kill(process.pid, 'SIGKILL');
}, checkMs);
`;

/**
 * Starts a watchdog for the calling thread. It never keeps the process alive: the worker and the heartbeat are unref'd.
 * @param {{ timeoutMs: number, beatMs?: number }} o
 */
function startWatchdog(o) {
  const beatMs = o.beatMs ?? 1000;
  const beats = new Int32Array(new SharedArrayBuffer(4));
  const worker = new workerThreads.Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { beats, timeoutMs: o.timeoutMs, checkMs: Math.min(beatMs, 1000) },
  });
  worker.unref();
  // node:timers, not the global: a suite's jest.useFakeTimers() replaces the global timers and would stop the beat.
  const beat = timers.setInterval(() => Atomics.add(beats, 0, 1), beatMs);
  beat.unref();
  return {
    /** Names what runs now, for the message. */
    note(label) {
      worker.postMessage(label);
    },
    stop() {
      timers.clearInterval(beat);
      return worker.terminate();
    },
  };
}

// Kept on a core module object: Jest gives every test file fresh globals and a fresh module registry, but core
// modules are shared, so one watchdog serves the whole process (the in-band run, or each worker process).
const SLOT = Symbol.for('nestjs-a2a-auth.test-watchdog');
const NOOP = { note() {}, stop: async () => 0 };

/** The process-wide watchdog (started on first use), or a no-op when disabled or under a debugger. */
function processWatchdog() {
  if (!workerThreads[SLOT]) {
    const seconds = Number(process.env.A2A_TEST_WATCHDOG_SECONDS ?? 120);
    // A debugger paused at a breakpoint looks exactly like a blocked main thread.
    const off = !(seconds > 0) || inspector.url() !== undefined;
    workerThreads[SLOT] = off ? NOOP : startWatchdog({ timeoutMs: seconds * 1000 });
  }
  return workerThreads[SLOT];
}

async function stopProcessWatchdog() {
  const w = workerThreads[SLOT];
  delete workerThreads[SLOT];
  if (w) await w.stop();
}

module.exports = { startWatchdog, processWatchdog, stopProcessWatchdog };
