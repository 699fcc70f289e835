/** Setting and counter names the service and formatVolume share. */
export const SETTING_VOLUME = 'volume';
export const SETTING_SECRET = 'secret';
export const COUNTER_INO_HI = 'ino_hi';
export const COUNTER_SLICE_HI = 'slice_hi';
/** Slice ids below it may have had their leaked blocks reclaimed (reclaim-floor.ts). */
export const COUNTER_RECLAIM_FLOOR = 'slice_reclaim_floor';
