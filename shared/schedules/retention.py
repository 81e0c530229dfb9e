"""Backup retention: prune an environment's old backups (artifact, then row).

Runs after a backup succeeded and was recorded, and only considers backups older than
that one, so a failing backup chain never prunes the last good copies. The policy comes
from the environment's enabled schedules: each may keep the last N backups and/or those
younger than N days. A backup is kept if any rule of any schedule keeps it (the
conservative union); schedules without retention keep nothing extra and prune nothing.
Retention counts every backup of the environment, manual ones included.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from uuid import UUID

from shared.domain.models import Backup, BackupSchedule
from shared.services import Services
from shared.store import activity
from shared.store import backups as backup_store
from shared.store import projects as project_store

log = logging.getLogger("cloudops.retention")
ACTOR = "retention"


@dataclass(frozen=True)
class Policy:
    keep_last: int | None
    keep_days: int | None


def policies(schedules: list[BackupSchedule]) -> list[Policy]:
    return [Policy(s.retain_count, s.retain_days) for s in schedules
            if s.enabled and (s.retain_count or s.retain_days)]


def to_prune(backups: list[Backup], newest: Backup, rules: list[Policy],
             younger_than: Mapping[int, set[UUID]]) -> list[Backup]:
    """Backups older than ``newest`` that no rule keeps (``backups`` newest first).
    ``younger_than[n]``: the ids of the backups taken within the last n days, for each
    rule's ``keep_days`` (measured by the database, which stamped them)."""
    if not rules:
        return []
    ordered = sorted(backups, key=lambda b: (b.created_at, str(b.id)), reverse=True)
    kept: set[UUID] = {newest.id}
    for rule in rules:
        if rule.keep_last:
            kept.update(b.id for b in ordered[:rule.keep_last])
        if rule.keep_days:
            kept.update(younger_than[rule.keep_days])
    return [b for b in ordered if b.id not in kept and b.created_at < newest.created_at]


def apply_retention(svc: Services, environment_id: UUID,
                    newest_backup_id: UUID) -> list[UUID]:
    """Prune what the policy no longer keeps; returns the pruned backup ids."""
    with svc.db.transaction() as conn:
        rules = policies(backup_store.list_schedules(conn, environment_id=environment_id))
        if not rules:
            return []
        newest = backup_store.get_backup(conn, newest_backup_id)
        project_id = project_store.project_id_of_environment(conn, environment_id)
        backups = backup_store.list_backups(conn, environment_id)
        younger_than = {r.keep_days: backup_store.backups_younger_than(
            conn, environment_id, r.keep_days) for r in rules if r.keep_days}
    pruned: list[UUID] = []
    for backup in to_prune(backups, newest, rules, younger_than):
        try:
            # artifact first: a row without its artifact would offer a broken restore
            svc.artifacts.delete(svc.artifacts.name_of(backup.location))
        except Exception as exc:  # keep the row; the next successful backup retries
            log.warning("retention: artifact of backup %s not deleted (%s)", backup.id,
                        type(exc).__name__)
            continue
        with svc.db.transaction() as conn:
            backup_store.delete_backup(conn, backup.id)
            activity.record(conn, actor=ACTOR, action="backup.pruned", project_id=project_id,
                            environment_id=environment_id, task_id=backup.task_id,
                            details={"backup": str(backup.id),
                                     "createdAt": backup.created_at.isoformat(),
                                     "newerBackup": str(newest_backup_id),
                                     "policy": [{"keepLast": r.keep_last,
                                                 "keepDays": r.keep_days} for r in rules]})
        pruned.append(backup.id)
    return pruned


def forget_expired(svc: Services, environment_id: UUID) -> list[UUID]:
    """Remove the rows of backups whose artifact storage no longer has (deleted by the
    storage lifecycle rule, or by hand): a listed backup always points at a dump."""
    with svc.db.transaction() as conn:
        backups = backup_store.list_backups(conn, environment_id)
    gone = [b for b in backups if not svc.artifacts.exists(svc.artifacts.name_of(b.location))]
    if not gone:
        return []
    with svc.db.transaction() as conn:
        project_id = project_store.project_id_of_environment(conn, environment_id)
        for backup in gone:
            backup_store.delete_backup(conn, backup.id)
            activity.record(conn, actor=ACTOR, action="backup.expired", project_id=project_id,
                            environment_id=environment_id, task_id=backup.task_id,
                            details={"backup": str(backup.id),
                                     "createdAt": backup.created_at.isoformat(),
                                     "reason": "its artifact is no longer in storage"})
    return [b.id for b in gone]
