/** Reported to the metadata service with each session and printed by `strata --version`. */
export const VERSION = '0.1.0';
