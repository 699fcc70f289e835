import { describePosixPrograms } from './posix-suite.js';

describePosixPrograms('a mounted MemFs driven by real programs', {});
