// The CLI on a serving thread (runOnServingThread): the command line it was given runs here
// as it would on the main thread, and its exit code ends the thread.
import { workerData } from 'node:worker_threads';
import { takeRelayedEvents } from '../common/index.js';
import { main } from './main.js';

takeRelayedEvents();
process.exit(await main(workerData as string[]));
