/**
 * The few builders the API's and the config's schemas are written with (TypeBox underneath): each
 * schema is written once and yields both the JSON Schema ajv validates and, by `Static`/`Parsed`,
 * the TypeScript type. No I/O, no state.
 */
import {
  type Static,
  type TArray,
  type TObject,
  type TOptional,
  type TProperties,
  type TSchema,
  type TUnsafe,
  Type,
} from '@sinclair/typebox';

export { type Static, type TObject, type TProperties, type TSchema, Type } from '@sinclair/typebox';

/** A phantom mark (never present at run time) on the type of a property that has a default. */
declare const DEFAULTED: unique symbol;
export type TDefaulted<T extends TSchema> = TOptional<T> & { readonly [DEFAULTED]: true };

/**
 * An optional property with a default: a sender may omit it (`Static` makes it optional), and after
 * validation with ajv's useDefaults it is always there (`Parsed` makes it required).
 */
export function Defaulted<T extends TSchema>(value: NoInfer<Static<T>>, schema: T): TDefaulted<T> {
  return Type.Optional({ ...schema, default: value }) as unknown as TDefaulted<T>;
}

/** `enum` rather than TypeBox's anyOf of consts: the keyword (and ajv's message) the contract always used. */
export function StringEnum<const V extends readonly string[]>(
  values: V,
  options: { description?: string } = {},
): TUnsafe<V[number]> {
  return Type.Unsafe<V[number]>({ enum: [...values], ...options });
}

/** A closed object: an unknown field is refused (every request, the config). */
export const Closed = <P extends TProperties>(properties: P, options: { description?: string; $id?: string } = {}) =>
  Type.Object(properties, { additionalProperties: false, ...options });

type Flat<T> = T extends object ? { [K in keyof T]: T[K] } : T;

type Props<P extends TProperties> = {
  [K in keyof P as P[K] extends TOptional<TSchema>
    ? P[K] extends { readonly [DEFAULTED]: true }
      ? K
      : never
    : K]: Parsed<P[K]>;
} & {
  [K in keyof P as P[K] extends TOptional<TSchema>
    ? P[K] extends { readonly [DEFAULTED]: true }
      ? never
      : K
    : never]?: Parsed<P[K]>;
};

/** The type of a value after validation with useDefaults: like Static, with every defaulted property present. */
export type Parsed<S extends TSchema> =
  S extends TObject<infer P> ? Flat<Props<P>> : S extends TArray<infer I> ? Parsed<I>[] : Static<S>;

/** Omit that keeps a union a union. */
export type OmitEach<T, K extends PropertyKey> = T extends unknown ? Flat<Omit<T, K>> : never;

/** Any JSON object (plain `{ "type": "object" }` in the contract, unlike TypeBox's Record). */
export const AnyObject = (options: { description?: string } = {}) =>
  Type.Unsafe<Record<string, unknown>>({ type: 'object', ...options });
