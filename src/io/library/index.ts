/** Simulation libraries: format (format.ts), resumable chunked writer (writer.ts), reader (reader.ts). */
export {
  LIBRARY_FORMAT_VERSION,
  LIBRARY_GENERATOR,
  LIBRARY_DATASETS,
  OPTIONAL_DATASETS,
  REQUIRED_DATASETS,
  type LibraryDatasetName,
  type OptionalDatasetName,
  DataFileError,
  canonicalJson,
  configHash,
  defaultColumnNames,
} from './format.js';
export {
  LibraryWriter,
  LibraryResumeError,
  LibraryWriterOptionsSchema,
  LibraryColumnsSchema,
  type LibraryWriterOptions,
  type LibraryColumns,
  type ChunkData,
  type ChunkSpec,
  type Rows,
  type LibraryWriteResult,
} from './writer.js';
export {
  readLibrary,
  openLibrary,
  LibraryReader,
  ReadLibraryOptionsSchema,
  type ReadLibraryOptions,
  type Library,
  type LibraryRows,
  type LibraryAttrs,
  type LibraryDatasetInfo,
} from './reader.js';
