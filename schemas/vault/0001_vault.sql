-- 0001: the PHI vault, a database of its own (never the job database). Identities and UID maps are
-- stored encrypted (AES-256-GCM, 12-byte nonce, 16-byte tag), each row with the id of the key that
-- sealed it, so keys can be rotated. Every access is audited.
CREATE TABLE identities (
  project     text NOT NULL,
  pseudonym   text NOT NULL,
  key_id      text NOT NULL,
  sealed      bytea NOT NULL,          -- nonce || ciphertext || tag of the identity (JSON)
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project, pseudonym)
);

CREATE TABLE uid_map (
  project       text NOT NULL,
  remapped_uid  text NOT NULL,         -- the de-identified UID (not PHI on its own)
  pseudonym     text NOT NULL,
  key_id        text NOT NULL,
  sealed        bytea NOT NULL,        -- the original UID, sealed
  PRIMARY KEY (project, remapped_uid)
);

CREATE INDEX uid_map_pseudonym ON uid_map (project, pseudonym);

CREATE TABLE audit (
  id         bigserial PRIMARY KEY,
  at         timestamptz NOT NULL DEFAULT now(),
  who        text NOT NULL,
  action     text NOT NULL,            -- store, reidentify, refused
  project    text NOT NULL,
  pseudonym  text NOT NULL DEFAULT '',
  reason     text NOT NULL DEFAULT '',
  outcome    text NOT NULL DEFAULT ''
);
