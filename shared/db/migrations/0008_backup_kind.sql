-- What a backup is: one somebody asked for ('backup': on request or on a schedule), or the
-- copy a restore takes of the state it is about to replace ('safety'). "Latest" and
-- sandbox seeding consider only the first kind: a safety copy holds the state a restore
-- was meant to get rid of.

ALTER TABLE backups ADD COLUMN kind text NOT NULL DEFAULT 'backup'
    CONSTRAINT backups_kind_check CHECK (kind IN ('backup', 'safety'));
