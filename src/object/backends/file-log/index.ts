export {
  LoggedFileStore,
  FILE_LOG_DEFAULTS,
  LOG_DIR,
  type FileLogOptions,
  type PlainFileStore,
} from './logged-store.js';
