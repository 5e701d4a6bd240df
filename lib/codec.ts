import { FST_SESSION_UNSERIALIZABLE } from './errors.js'

/** A value as JSON can hold it. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

/** How deep a stored value may nest (objects and arrays), counted from the value itself. */
export const MAX_DEPTH = 64

/** Turns session values into JSON forms and back; one per plugin registration. */
export class Codec {
  /**
   * Turns a session value into its JSON form, checking it on the way: the copy is
   * taken at `set()`, so a value that cannot be stored fails there, naming its
   * key, and never later at save time.
   */
  toJson (value: unknown, key: string): Json {
    return encode(value, key, [])
  }

  /** Turns a stored JSON form back into the value `set()` was given. */
  fromJson (json: Json): unknown {
    return json
  }
}

function encode (value: unknown, key: string, ancestors: object[]): Json {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value
    case 'number':
      if (Number.isFinite(value)) return value
      throw new FST_SESSION_UNSERIALIZABLE(key, `${value} is not a finite number`)
    case 'object':
      if (value === null) return null
      return encodeObject(value, key, ancestors)
    default:
      throw new FST_SESSION_UNSERIALIZABLE(key, `a ${typeof value} cannot be stored`)
  }
}

function encodeObject (value: object, key: string, ancestors: object[]): Json {
  if (ancestors.includes(value)) throw new FST_SESSION_UNSERIALIZABLE(key, 'the value contains a cycle')
  if (ancestors.length >= MAX_DEPTH) throw new FST_SESSION_UNSERIALIZABLE(key, `the value nests deeper than ${MAX_DEPTH} levels`)
  ancestors.push(value)
  let out: Json
  if (Array.isArray(value)) {
    out = new Array<Json>(value.length)
    for (let i = 0; i < value.length; i++) out[i] = value[i] === undefined ? null : encode(value[i], key, ancestors)
  } else {
    const proto = Object.getPrototypeOf(value)
    if (proto !== Object.prototype && proto !== null) {
      throw new FST_SESSION_UNSERIALIZABLE(key, `an instance of ${describe(value)} is not plain data`)
    }
    // A prototype-less copy: a "__proto__" key stays an ordinary key.
    const copy: Record<string, Json> = Object.create(null)
    for (const name of Object.keys(value)) {
      const item = (value as Record<string, unknown>)[name]
      if (item !== undefined) copy[name] = encode(item, key, ancestors)
    }
    out = copy
  }
  ancestors.pop()
  return out
}

function describe (value: object): string {
  const name = (value.constructor as { name?: unknown } | undefined)?.name
  return typeof name === 'string' && name !== '' ? name : 'an anonymous class'
}
