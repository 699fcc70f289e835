export { fsck, type FsckOptions, type FsckReport, type FsckProblem, type FsckCode } from './fsck.js';
