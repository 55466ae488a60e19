/** The resident registry: who exists, proven against the national population database. */
export { generateResidents } from './generate.ts';
export {
  COLUMNS as REGISTRY_COLUMNS,
  CSV_HEADER as REGISTRY_CSV_HEADER,
  formatRecord,
  type RegistryFormat,
  type RegistryRecord,
  recordOf,
} from './import.columns.ts';
export { type ImportCounts, type ImportOptions, importResidents } from './import.ts';
export { checkPin, comparableName, decodePin, isPinShape, pinPrefix } from './pin.ts';
export { PROVINCES } from './provinces.ts';
export {
  countResidents,
  insertResidents,
  type NewResident,
  type Resident,
  type ResidentRow,
  selectResident as findResident,
  toResident,
} from './residents.repository.ts';
