/**
 * The builders the API's and the config's schemas are written with: each call makes a plain JSON
 * Schema object (what ajv validates and the docs print) typed with TypeBox's schema types, so that
 * `Static` (and `Parsed`) give the TypeScript type of the same definition. Only TypeBox's types are
 * used: its run-time builders (some 300 modules, about 90 ms of CPU at every start of the daemon
 * and of each CLI command) are never loaded. No I/O, no state.
 */
import type {
  Static,
  TArray,
  TBoolean,
  TInteger,
  TIntersect,
  TLiteral,
  TLiteralValue,
  TNull,
  TNumber,
  TObject,
  TOptional,
  TProperties,
  TSchema,
  TString,
  TUnion,
  TUnsafe,
} from '@sinclair/typebox';

export type { Static, TObject, TProperties, TSchema } from '@sinclair/typebox';

/** TypeBox's mark of an optional property (a symbol key: JSON and ajv never see it). */
const OPTIONAL = Symbol.for('TypeBox.Optional');

type Options = Record<string, unknown>;
const make = <T>(schema: Options): T => schema as T;

function object<P extends TProperties>(properties: P, options: Options = {}): TObject<P> {
  const required = Object.keys(properties).filter((k) => !(OPTIONAL in (properties[k] as object)));
  return make({ type: 'object', properties, ...(required.length > 0 ? { required } : {}), ...options });
}

type PartialProps<P extends TProperties> = { [K in keyof P]: TOptional<P[K]> };

export const Type = {
  String: (options: Options = {}): TString => make({ type: 'string', ...options }),
  Integer: (options: Options = {}): TInteger => make({ type: 'integer', ...options }),
  Number: (options: Options = {}): TNumber => make({ type: 'number', ...options }),
  Boolean: (options: Options = {}): TBoolean => make({ type: 'boolean', ...options }),
  Null: (): TNull => make({ type: 'null' }),
  Literal: <const V extends TLiteralValue>(value: V, options: Options = {}): TLiteral<V> =>
    make({ const: value, type: typeof value, ...options }),
  Array: <T extends TSchema>(items: T, options: Options = {}): TArray<T> => make({ type: 'array', items, ...options }),
  Object: object,
  Optional: <T extends TSchema>(schema: T): TOptional<T> => make({ ...schema, [OPTIONAL]: 'Optional' }),
  Partial: <P extends TProperties>(schema: TObject<P>): TObject<PartialProps<P>> => {
    const { required: _, properties, ...rest } = schema;
    const props = Object.fromEntries(Object.entries(properties).map(([k, v]) => [k, Type.Optional(v)]));
    return make({ ...rest, properties: props });
  },
  Union: <const T extends TSchema[]>(anyOf: [...T], options: Options = {}): TUnion<T> => make({ anyOf, ...options }),
  Intersect: <const T extends TSchema[]>(allOf: [...T], options: Options = {}): TIntersect<T> =>
    make({ allOf, ...options }),
  /** A schema written by hand, with the type it stands for. */
  Unsafe: <T>(schema: Options = {}): TUnsafe<T> => make(schema),
};

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

/** `enum` (rather than an anyOf of consts): the keyword, and ajv's message, the contract always used. */
export function StringEnum<const V extends readonly string[]>(
  values: V,
  options: { description?: string } = {},
): TUnsafe<V[number]> {
  return Type.Unsafe<V[number]>({ enum: [...values], ...options });
}

/** A closed object: an unknown field is refused (every request, the config). */
export const Closed = <P extends TProperties>(properties: P, options: { description?: string; $id?: string } = {}) =>
  Type.Object(properties, { additionalProperties: false, ...options });

/** Any JSON object. */
export const AnyObject = (options: { description?: string } = {}) =>
  Type.Unsafe<Record<string, unknown>>({ type: 'object', ...options });

/** An object used as a map: any keys, every value of one schema. */
export const Dict = <V extends TSchema>(value: V, options: { description?: string } = {}) =>
  Type.Unsafe<Record<string, Static<V>>>({ type: 'object', additionalProperties: value, ...options });

type Flat<T> = T extends object ? { [K in keyof T]: T[K] } : T;
type IsDefaulted<S> = S extends { readonly [DEFAULTED]: true } ? true : false;

type Props<P extends TProperties> = {
  [K in keyof P as P[K] extends TOptional<TSchema> ? (IsDefaulted<P[K]> extends true ? K : never) : K]: Parsed<P[K]>;
} & {
  [K in keyof P as P[K] extends TOptional<TSchema> ? (IsDefaulted<P[K]> extends true ? never : K) : never]?: Parsed<
    P[K]
  >;
};

/** The type of a value after validation with useDefaults: like Static, with every defaulted property present. */
export type Parsed<S extends TSchema> =
  S extends TObject<infer P> ? Flat<Props<P>> : S extends TArray<infer I> ? Parsed<I>[] : Static<S>;

/** Omit that keeps a union a union. */
export type OmitEach<T, K extends PropertyKey> = T extends unknown ? Flat<Omit<T, K>> : never;
