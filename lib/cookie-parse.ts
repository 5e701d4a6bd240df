/** Spaces and tabs, the whitespace a `Cookie` header may hold around names and values. */
function trim (text: string, start: number, end: number): string {
  while (start < end && (text.charCodeAt(start) === 32 || text.charCodeAt(start) === 9)) start++
  while (end > start && (text.charCodeAt(end - 1) === 32 || text.charCodeAt(end - 1) === 9)) end--
  return text.slice(start, end)
}

/**
 * The value of one cookie in a `Cookie` header, found without parsing the
 * others, read exactly as the `cookie` package that `@fastify/cookie` uses
 * reads it: the first pair of that name wins, spaces and tabs around names
 * and values are dropped, and %-escapes are decoded when they are valid.
 */
export function findCookie (header: string, name: string): string | undefined {
  const length = header.length
  let start = 0
  while (start < length) {
    let end = header.indexOf(';', start)
    if (end === -1) end = length
    const equals = header.indexOf('=', start)
    if (equals === -1) return undefined
    if (equals < end && trim(header, start, equals) === name) {
      const value = trim(header, equals + 1, end)
      if (!value.includes('%')) return value
      try {
        return decodeURIComponent(value)
      } catch {
        return value
      }
    }
    start = end + 1
  }
  return undefined
}

/**
 * Every cookie of a `Cookie` header whose name is `prefix` then digits, as
 * `[index, value]` pairs, the first of each name kept, as `findCookie` reads.
 */
export function findNumberedCookies (header: string, prefix: string): Array<[number, string]> {
  const found = new Map<number, string>()
  for (const pair of header.split(';')) {
    const equals = pair.indexOf('=')
    if (equals === -1) continue
    const name = trim(pair, 0, equals)
    if (!name.startsWith(prefix)) continue
    const index = numberedIndex(name, prefix)
    if (index === undefined || found.has(index)) continue
    found.set(index, findCookie(pair, name) as string)
  }
  return [...found]
}

/** The index of a cookie named `prefix` then digits, or undefined for any other name. */
export function numberedIndex (name: string, prefix: string): number | undefined {
  const digits = name.slice(prefix.length)
  if (!/^(?:0|[1-9]\d{0,2})$/.test(digits)) return undefined
  return Number(digits)
}
