export {
  settingSpecs,
  parseSetting,
  type SettingSpec,
  type SettingKind,
  type SettingName,
  type StrataConfig,
} from './settings.js';
export {
  resolveConfig,
  describeConfig,
  settingNames,
  type ResolvedConfig,
  type SettingSource,
  type ConfigInputs,
} from './resolve.js';
