import { FST_SESSION_INVALID_OPTION } from '../errors.js'

/**
 * Refuses any option an archive does not know, naming it: a misspelt
 * `maxSesions` would otherwise leave the default in force without a word.
 */
export function refuseUnknownOptions (archive: string, options: unknown, known: readonly string[]): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw Object.assign(new FST_SESSION_INVALID_OPTION(`${archive} options`, 'must be an object'), { option: `${archive} options` })
  }
  for (const name of Object.keys(options)) {
    if (!known.includes(name)) {
      const option = `${archive}.${name}`
      throw Object.assign(new FST_SESSION_INVALID_OPTION(option, `is not an option of ${archive}; its options are ${known.join(', ')}`), { option })
    }
  }
}
