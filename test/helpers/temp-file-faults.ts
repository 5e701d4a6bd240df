import * as fsp from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import type { FileArchiveFs, FileArchiveHandle } from '../../lib/archives/file.js'

/** What a FileArchive does with the temp file of a write, through its handle. */
export type TempFileStep = 'writeFile' | 'utimes' | 'stat'

/**
 * `open` of `node:fs/promises`, except that the handle of a temp file (`*.tmp`)
 * fails at a step when `failure(step)` gives an error. A failing `writeFile`
 * first writes part of the value, as a write that dies half-way does.
 */
export function openWithTempFileFaults (failure: (step: TempFileStep) => Error | undefined): FileArchiveFs['open'] {
  const faulty = (handle: FileHandle): FileArchiveHandle => Object.assign(Object.create(handle) as FileHandle, {
    writeFile: async (data: string) => {
      const error = failure('writeFile')
      if (error === undefined) return await handle.writeFile(data)
      await handle.writeFile(data.slice(0, Math.ceil(data.length / 2)))
      throw error
    },
    utimes: async (atime: number, mtime: number) => {
      const error = failure('utimes')
      if (error !== undefined) throw error
      return await handle.utimes(atime, mtime)
    },
    stat: async () => {
      const error = failure('stat')
      if (error !== undefined) throw error
      return await handle.stat()
    },
    close: () => handle.close()
  })
  return async (file: string, flags: number, mode?: number) => {
    const handle = await fsp.open(file, flags, mode)
    return file.endsWith('.tmp') ? faulty(handle) : handle
  }
}
