declare const brand: unique symbol;
/** A nominal type: a number that cannot be passed where another kind of id is expected. */
export type Branded<T, Name extends string> = T & { readonly [brand]: Name };

/** An inode number. 1 is the root directory of every volume. */
export type Ino = Branded<number, 'Ino'>;
/** A slice id: names an immutable run of file data, stored as one or more blocks. */
export type SliceId = Branded<number, 'SliceId'>;

export const ROOT_INO = 1 as Ino;

export const asIno = (value: number): Ino => value as Ino;
export const asSliceId = (value: number): SliceId => value as SliceId;
