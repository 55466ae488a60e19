/** Row types of every table, as Kysely sees them. Only `*.repository.ts` files use these. */
import type { ColumnType, Generated, JSONColumnType } from 'kysely';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;

/** One oidc-provider model instance (session, grant, code, token, interaction, ...). */
export interface OidcPayloadTable {
  model: string;
  id: string;
  payload: JSONColumnType<Record<string, unknown>>;
  grant_id: string | null;
  uid: string | null;
  user_code: string | null;
  expires_at: Timestamp | null;
  consumed_at: Timestamp | null;
}

/** Structured residence: province, district/ward, street line. */
export interface Residence {
  province: string;
  district?: string;
  ward?: string;
  street?: string;
}

/** A resident of the national population database. */
export interface ResidentTable {
  id: Generated<string>;
  pin: string;
  full_name: string;
  family_name: string;
  middle_name: string | null;
  given_name: string;
  birth_date: ColumnType<string, string, string>;
  sex: 'male' | 'female';
  nationality: Generated<string>;
  place_of_origin: string | null;
  permanent_residence: JSONColumnType<Residence> | null;
  current_residence: JSONColumnType<Residence> | null;
  status: Generated<string>;
  phone: string | null;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
  /** A synthetic test citizen: the only residents a sandbox portal may sign in. */
  test_citizen: ColumnType<boolean, boolean | undefined, boolean>;
}

/** A staff role held by an account. */
export interface StaffRoleTable {
  account_id: string;
  role: string;
  /** Officers: the province codes they may act in (null: all). */
  provinces: string[] | null;
  /** Agency admins: their agency. */
  agency: string | null;
  granted_by: string;
  granted_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

/** The published credentials of a synthetic test citizen (sandbox portals). */
export interface SandboxCitizenTable {
  resident_id: string;
  password: string;
  totp_secret: string | null;
}

/** An e-ID account, bound to one resident by internal id. */
export interface AccountTable {
  id: Generated<string>;
  resident_id: string;
  password_hash: string;
  level: Generated<number>;
  status: Generated<string>;
  email: string | null;
  phone_number: string | null;
  verified_in_person_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  verified_by: ColumnType<string | null, string | null | undefined, string | null>;
  /** The session (uid) that redeemed the activation code: only it may enroll a second factor with that check. */
  in_person_session: ColumnType<string | null, string | null | undefined, string | null>;
  /** When the in-person check was used up (a second factor enrolled with it, or reset by an officer). */
  in_person_spent_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  /** TOTP secret sealed under the master key (level 2). */
  totp_secret_sealed: ColumnType<string | null, string | null | undefined, string | null>;
  /** A TOTP secret being enrolled, not yet confirmed. */
  totp_pending_sealed: ColumnType<string | null, string | null | undefined, string | null>;
  /** The last accepted TOTP time step (codes at or before it are refused: replay). */
  totp_last_step: ColumnType<string | null, number | string | null | undefined, number | string | null>;
  /** The last password reset: when, how (`sms`, `officer`), from where; told to the citizen at the next sign-in. */
  password_reset_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  password_reset_via: ColumnType<string | null, string | null | undefined, string | null>;
  password_reset_ip: ColumnType<string | null, string | null | undefined, string | null>;
  password_reset_told_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  created_at: ColumnType<Date, Date | string | undefined, Date | string>;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

/** A relying portal. */
export interface ClientTable {
  client_id: string;
  name: string;
  metadata: JSONColumnType<Record<string, unknown>>;
  secret_sha256: string | null;
  /** During a secret rotation's grace period: the previous secret's SHA-256, valid until the time below. */
  previous_secret_sha256: ColumnType<string | null, string | null | undefined, string | null>;
  previous_secret_expires_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  created_at: ColumnType<Date, Date | string | undefined, Date | string>;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

/** A signing key; the private JWK is sealed under the master key. */
export interface SigningKeyTable {
  kid: string;
  alg: string;
  state: string;
  public_jwk: JSONColumnType<Record<string, unknown>>;
  private_jwk_sealed: string;
  created_at: ColumnType<Date, Date | string | undefined, Date | string>;
  activated_at: Timestamp | null;
  retired_at: Timestamp | null;
  /** Activate automatically once published for the lead time (keys staged by `rotate`). */
  auto_activate: ColumnType<boolean, boolean | undefined, boolean>;
  removed_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  revoked_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  operator: ColumnType<string | null, string | null | undefined, string | null>;
}

/** A random secret sealed under the master key (the root of derived secrets). */
export interface ServiceSecretTable {
  name: string;
  sealed: string;
  created_at: ColumnType<Date, Date | undefined, never>;
}

/** One audit event, chained to the previous by `prev_hash`. */
export interface AuditEventTable {
  seq: ColumnType<string, number | string, never>;
  at: ColumnType<Date, Date, never>;
  actor_type: string;
  actor_id: string | null;
  action: string;
  subject: string | null;
  client_id: string | null;
  ip: string | null;
  user_agent: string | null;
  outcome: string;
  reason: string | null;
  details: JSONColumnType<Record<string, unknown>>;
  prev_hash: string;
  hash: string;
}

/** The chain's starting point after archiving. */
export interface AuditCheckpointTable {
  seq: ColumnType<string, number | string, never>;
  hash: string;
  archived_at: ColumnType<Date, Date | undefined, never>;
  archive_sha256: string;
}

/** A personal ID cancelled and reissued (Circular 59/2021): the resident keeps its internal id. */
export interface ResidentPinHistoryTable {
  id: Generated<string>;
  resident_id: string;
  old_pin: string;
  new_pin: string;
  changed_at: Generated<Date>;
}

/** Numbers seen by one import run. */
export interface RegistryImportSeenTable {
  run_id: string;
  pin: string;
}

/** One-time code an officer gives after verifying a citizen in person. */
export interface ActivationCodeTable {
  id: Generated<string>;
  account_id: string;
  code_sha256: string;
  officer: string;
  created_at: Generated<Date>;
  expires_at: Date;
  used_at: Date | null;
}

/** Single-use recovery code (second factor fallback), stored as SHA-256. */
export interface RecoveryCodeTable {
  id: Generated<string>;
  account_id: string;
  code_sha256: string;
  used_at: Date | null;
}

/** A queued back-channel logout delivery. */
export interface BackchannelOutboxTable {
  id: Generated<string>;
  client_id: string;
  url: string;
  /** The form body (logout token); cleared once delivered or abandoned. */
  body: string | null;
  subject: string | null;
  sid: string | null;
  attempts: ColumnType<number, number | undefined, number>;
  next_at: ColumnType<Date, Date | undefined, Date>;
  deadline: Date;
  delivered_at: Date | null;
  failed_at: Date | null;
  last_error: string | null;
  created_at: ColumnType<Date, Date | undefined, never>;
}

/** Device and place of an SSO session. */
export interface SessionDeviceTable {
  session_uid: string;
  account_id: string;
  user_agent: string | null;
  ip: string | null;
  created_at: ColumnType<Date, Date | undefined, never>;
  last_seen_at: ColumnType<Date, Date | undefined, Date>;
}

/** A request to end every session of an account (from the CLI or the registry), carried out by the service. */
export interface SessionTerminationTable {
  id: Generated<string>;
  account_id: string;
  reason: string;
  requested_at: ColumnType<Date, Date | undefined, never>;
  done_at: Date | null;
}

/** A one-time code proving possession of the registered phone (SMS), or an officer's in-person reset code. */
export interface VerificationCodeTable {
  id: Generated<string>;
  purpose: 'enroll' | 'reset_sms' | 'reset_officer';
  resident_id: string;
  account_id: string | null;
  phone: string | null;
  /** HMAC-SHA-256 of the code under a key derived from the secret root, bound to the row id. */
  code_hash: string;
  /** Enrollment: the argon2id hash of the chosen password, until the code is entered. */
  password_hash: string | null;
  officer: string | null;
  tries_left: Generated<number>;
  ip: string | null;
  /** Keyed hash of the form nonce of the browser the code belongs to: a handle works in that browser only. */
  browser: string | null;
  created_at: ColumnType<Date, Date | undefined, never>;
  expires_at: ColumnType<Date, Date, Date>;
  verified_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  used_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
}

/** Development SMS channel: what would have been sent. */
export interface SmsOutboxTable {
  id: Generated<string>;
  to_phone: string;
  purpose: string;
  body: string;
  created_at: ColumnType<Date, Date | undefined, never>;
}

/** A passkey (WebAuthn credential) of an account; `id` is the credential id (base64url). */
export interface PasskeyTable {
  id: string;
  account_id: string;
  public_key: Buffer;
  /** The authenticator's signature counter (0 when it keeps none); a counter going backwards is refused. */
  sign_count: ColumnType<string, number | string, number | string>;
  transports: string[];
  aaguid: string;
  /** Backup eligible / backed up: a synced passkey (`swk`) rather than a device-bound one (`hwk`). */
  backup_eligible: boolean;
  backed_up: boolean;
  /** The level it proves: 2 only when registered by a recent level-2 session of a level-2 account. */
  level: number;
  name: string;
  created_at: ColumnType<Date, Date | undefined, never>;
  last_used_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  /** When a sign count going backwards was seen (a cloned authenticator?); shown on /account. */
  clone_suspected_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
}

/** A WebAuthn challenge, single-use, bound to an interaction (`login:<uid>`) or a session (`register:<uid>`). */
export interface PasskeyChallengeTable {
  binding: string;
  challenge: string;
  /** Step-up and registration: the account the answer must belong to. */
  account_id: string | null;
  expires_at: ColumnType<Date, Date, Date>;
}

/** The whole database. */
export interface DB {
  oidc_payloads: OidcPayloadTable;
  residents: ResidentTable;
  accounts: AccountTable;
  clients: ClientTable;
  staff_roles: StaffRoleTable;
  sandbox_citizens: SandboxCitizenTable;
  signing_keys: SigningKeyTable;
  audit_events: AuditEventTable;
  audit_checkpoints: AuditCheckpointTable;
  resident_pin_history: ResidentPinHistoryTable;
  registry_import_seen: RegistryImportSeenTable;
  activation_codes: ActivationCodeTable;
  recovery_codes: RecoveryCodeTable;
  service_secrets: ServiceSecretTable;
  backchannel_outbox: BackchannelOutboxTable;
  session_devices: SessionDeviceTable;
  session_terminations: SessionTerminationTable;
  verification_codes: VerificationCodeTable;
  sms_outbox: SmsOutboxTable;
  passkeys: PasskeyTable;
  passkey_challenges: PasskeyChallengeTable;
}
