/** The resident registry: who exists, proven against the national population database. */
export { type GeneratedResident, generateResidents, mulberry32 } from './generate.ts';
export {
  COLUMNS as REGISTRY_COLUMNS,
  CSV_HEADER as REGISTRY_CSV_HEADER,
  formatRecord,
  type RegistryFormat,
  type RegistryRecord,
  recordOf,
} from './import.columns.ts';
export { type ImportCounts, type ImportOptions, type ImportProgress, importResidents } from './import.ts';
export { checkPin, comparableName, decodePin, isPinShape, type PinProblem, pinPrefix } from './pin.ts';
export { PROVINCES } from './provinces.ts';
export {
  countResidents,
  insertResidents,
  type NewResident,
  type Resident,
  type ResidentRow,
  residentColumns,
  selectResident as findResident,
  toResident,
} from './residents.repository.ts';
