"""Visitor.generation, kept current by statement-level triggers on the interaction log."""

from django.db import migrations, models

BUMP_FUNCTION = """
CREATE OR REPLACE FUNCTION webapp_visitor_generation_add(changes jsonb) RETURNS void
LANGUAGE sql AS $$
    -- Lock the visitors in id order first, so concurrent writers never deadlock.
    WITH counted AS (
        SELECT (key)::bigint AS visitor_id, (value)::bigint AS n FROM jsonb_each_text(changes)
    ), locked AS (
        SELECT v.id FROM webapp_visitor v JOIN counted c ON c.visitor_id = v.id
        ORDER BY v.id FOR NO KEY UPDATE OF v
    )
    UPDATE webapp_visitor v SET generation = v.generation + c.n
        FROM counted c WHERE v.id = c.visitor_id AND v.id IN (SELECT id FROM locked);
$$;
CREATE OR REPLACE FUNCTION webapp_visitor_generation_bump() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    changes jsonb;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT jsonb_object_agg(visitor_id, n) INTO changes
            FROM (SELECT visitor_id, count(*) AS n FROM new_rows GROUP BY visitor_id) c;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT jsonb_object_agg(visitor_id, n) INTO changes
            FROM (SELECT visitor_id, count(*) AS n FROM old_rows GROUP BY visitor_id) c;
    ELSE  -- only rows moved to another visitor (a login merge) change what anyone sees
        SELECT jsonb_object_agg(visitor_id, n) INTO changes FROM (
            SELECT visitor_id, count(*) AS n FROM (
                SELECT o.visitor_id FROM old_rows o JOIN new_rows m ON m.id = o.id
                    WHERE m.visitor_id IS DISTINCT FROM o.visitor_id
                UNION ALL
                SELECT m.visitor_id FROM old_rows o JOIN new_rows m ON m.id = o.id
                    WHERE m.visitor_id IS DISTINCT FROM o.visitor_id
            ) moved GROUP BY visitor_id
        ) c;
    END IF;
    IF changes IS NOT NULL THEN
        PERFORM webapp_visitor_generation_add(changes);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER webapp_interaction_generation_insert AFTER INSERT ON webapp_interaction
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION webapp_visitor_generation_bump();
CREATE TRIGGER webapp_interaction_generation_delete AFTER DELETE ON webapp_interaction
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION webapp_visitor_generation_bump();
CREATE TRIGGER webapp_interaction_generation_update AFTER UPDATE ON webapp_interaction
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION webapp_visitor_generation_bump();
"""

DROP_FUNCTION = """
DROP TRIGGER IF EXISTS webapp_interaction_generation_insert ON webapp_interaction;
DROP TRIGGER IF EXISTS webapp_interaction_generation_delete ON webapp_interaction;
DROP TRIGGER IF EXISTS webapp_interaction_generation_update ON webapp_interaction;
DROP FUNCTION IF EXISTS webapp_visitor_generation_bump();
DROP FUNCTION IF EXISTS webapp_visitor_generation_add(jsonb);
"""

BACKFILL = """
UPDATE webapp_visitor v SET generation = c.n
    FROM (SELECT visitor_id, count(*) AS n FROM webapp_interaction GROUP BY visitor_id) c
    WHERE v.id = c.visitor_id;
"""


class Migration(migrations.Migration):
    dependencies = [("webapp", "0003_interaction_fk_indexes")]

    operations = [
        migrations.AddField(
            model_name="visitor",
            name="generation",
            field=models.BigIntegerField(default=0, editable=False),
        ),
        migrations.RunSQL(BUMP_FUNCTION, DROP_FUNCTION),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
    ]
