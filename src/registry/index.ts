/** The resident registry: who exists, proven against the national population database. */
export { checkPin, comparableName, decodePin, isPinShape, type PinProblem, pinPrefix } from './pin.ts';
export { PROVINCES } from './provinces.ts';
export {
  countResidents,
  insertResidents,
  type NewResident,
  type Resident,
  selectResident as findResident,
} from './residents.repository.ts';
