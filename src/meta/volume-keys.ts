/** Setting and counter names the service and formatVolume share. */
export const SETTING_VOLUME = 'volume';
export const SETTING_SECRET = 'secret';
export const COUNTER_INO_HI = 'ino_hi';
export const COUNTER_SLICE_HI = 'slice_hi';
