-- Change freezes and business hours (#20): windows in a time zone during which chosen
-- operations of an environment are held until the window ends, or refused; an admin
-- override lifts them for a while, with a recorded reason.

CREATE TABLE environment_freezes (
    environment_id uuid PRIMARY KEY REFERENCES environments(id) ON DELETE CASCADE,
    windows jsonb NOT NULL DEFAULT '[]'::jsonb,
    override_until timestamptz,
    override_by text,
    override_reason text,
    updated_by text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
