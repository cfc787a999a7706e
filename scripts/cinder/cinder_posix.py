#!/usr/bin/python3
"""Drive REAL OpenStack Cinder's PosixBackupDriver without any OpenStack service.

Backups and restores go through Cinder's own, unmodified
cinder.backup.chunkeddriver.ChunkedBackupDriver.backup()/restore() and
cinder.backup.drivers.posix.PosixBackupDriver: reading the volume, hashing,
chunking, compressing, writing objects, writing _sha256file/_metadata,
parsing JSON, decompressing and writing the restored volume are all Cinder
code. Only the database and the message bus are replaced:

* objects.Backup.save()/get_by_id() use an in-memory registry instead of the
  DB (so backup.refresh() and the restore chain walk work as in Cinder);
* the driver's `db` (volume_get, volume metadata, glance metadata, used by
  BackupMetadataAPI) is an in-memory fake holding one volume;
* notifications are disabled (oslo_messaging_notifications.driver = []).

The parent of an incremental and the restore chain are discovered from the
store (the prefix Cinder keeps in backup.service_metadata is found by listing
the container for the backup's `*_metadata` object; parent_id comes from each
backup's `_metadata`), unless --chain gives the chain explicitly.

Needs Debian's python3-cinder (21.3.1) and python3-zstd; see install.sh.
Use /usr/bin/python3.
"""

# Like cinder-backup (cinder/cmd/backup.py): monkey patch before anything else.
import eventlet
eventlet.monkey_patch()

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import uuid  # noqa: E402
from unittest import mock  # noqa: E402

GiB = 1024 ** 3
HARNESS_VOLUME_TYPE_ID = str(uuid.uuid5(uuid.NAMESPACE_URL,
                                        'chunkback-cinder-harness-volume-type'))
POSIX_DRIVER = 'cinder.backup.drivers.posix.PosixBackupDriver'


class HarnessError(Exception):
    pass


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog='cinder_posix.py',
        description="Back up / restore with real Cinder's PosixBackupDriver.")
    p.add_argument('--debug', action='store_true',
                   help='Cinder DEBUG logging and tracebacks on stderr')
    sub = p.add_subparsers(dest='cmd', required=True)

    b = sub.add_parser('backup', help='ChunkedBackupDriver.backup()')
    b.add_argument('--backup-path', required=True,
                   help='backup_posix_path (root of the store)')
    b.add_argument('--volume', required=True, help='volume file to read')
    b.add_argument('--volume-id', required=True)
    b.add_argument('--backup-id', required=True)
    b.add_argument('--parent-id', default=None,
                   help='incremental on top of this backup')
    b.add_argument('--parent-container', default=None,
                   help="parent's container (default: search its default "
                        "container, then --container)")
    b.add_argument('--object-size', type=int, default=1999994880,
                   help='backup_file_size (default %(default)s)')
    b.add_argument('--block-size', type=int, default=32768,
                   help='backup_sha_block_size_bytes (default %(default)s)')
    b.add_argument('--compression', default='zlib',
                   help='backup_compression_algorithm (default zlib)')
    b.add_argument('--container', default=None,
                   help="backup.container (default: Cinder's "
                        "ID[0:2]/ID[2:4]/ID)")
    b.add_argument('--name', default=None, help='backup display_name')
    b.add_argument('--description', default=None,
                   help='backup display_description')
    b.add_argument('--volume-name', default=None, help='volume display_name')
    b.add_argument('--volume-size-gib', type=int, default=None,
                   help='volume size in GiB (default ceil(file size), min 1)')
    b.add_argument('--volume-metadata', action='append', default=[],
                   metavar='KEY=VALUE', help='volume metadata (repeatable)')
    b.add_argument('--glance-metadata', action='append', default=[],
                   metavar='KEY=VALUE', help='volume glance metadata')
    b.add_argument('--encryption-key-id', default=None)

    r = sub.add_parser('restore', help='ChunkedBackupDriver.restore()')
    r.add_argument('--backup-path', required=True)
    r.add_argument('--volume-id', required=True,
                   help='id of the volume restored to')
    r.add_argument('--backup-id', required=True)
    r.add_argument('--container', default=None,
                   help="the backup's container (default ID[0:2]/ID[2:4]/ID)")
    r.add_argument('--chain', default=None,
                   help='comma-separated backup ids, full first, ending with '
                        '--backup-id: the parent links Cinder would read '
                        'from its DB (default: parent_id of each _metadata)')
    r.add_argument('--out', required=True,
                   help="file to restore into (opened 'wb' like the manager)")
    r.add_argument('--summary', action='store_true',
                   help='print a one-line JSON summary (chain, volume '
                        'metadata Cinder restored, seconds)')
    return p.parse_args(argv)


def kv_list(items, what):
    out = {}
    for it in items:
        if '=' not in it:
            raise HarnessError('%s %r: want KEY=VALUE' % (what, it))
        k, v = it.split('=', 1)
        out[k] = v
    return out


# ---------------------------------------------------------------------------
# Cinder setup

def setup_cinder(args, object_size=None, block_size=None, compression=None):
    level = logging.DEBUG if args.debug else logging.WARNING
    logging.basicConfig(stream=sys.stderr, level=level,
                        format='%(levelname)s %(name)s: %(message)s')

    from oslo_config import cfg
    import oslo_messaging.notify.notifier as oslo_notifier

    from cinder.common import config  # noqa: F401  (global opts)
    from cinder import objects
    objects.register_all()
    from cinder.backup.drivers import posix  # noqa: F401  (registers opts)
    from cinder.backup import chunkeddriver  # noqa: F401

    CONF = cfg.CONF
    CONF.register_opts(oslo_notifier._notifier_opts,
                       group='oslo_messaging_notifications')
    # Never read /etc/cinder/cinder.conf or OS_* environment variables.
    CONF(args=[], project='cinder', default_config_files=[],
         default_config_dirs=[], use_env=False)
    CONF.set_override('driver', [], group='oslo_messaging_notifications')
    CONF.set_override('backup_posix_path', os.path.abspath(args.backup_path))
    CONF.set_override('backup_enable_progress_timer', False)
    if object_size is not None:
        CONF.set_override('backup_file_size', object_size)
    if block_size is not None:
        CONF.set_override('backup_sha_block_size_bytes', block_size)
    if compression is not None:
        CONF.set_override('backup_compression_algorithm', compression)

    # As BackupManager.__init__ does with backup_native_threads_pool_size
    # (default 60; that option lives in cinder.backup.manager, not imported).
    from eventlet import tpool
    tpool.set_num_threads(60)
    return CONF


class FakeGlanceMeta(object):
    def __init__(self, key, value):
        self.key = key
        self.value = value


class FakeDB(object):
    """The few cinder.db calls BackupMetadataAPI and the driver make."""

    def __init__(self):
        self.volumes = {}       # id -> cinder.db.sqlalchemy.models.Volume
        self.metadata = {}      # id -> {k: v}
        self.glance = {}        # id -> {k: v}
        self.updates = {}       # id -> merged volume_update() values

    def dispose_engine(self):
        pass

    def add_volume(self, **values):
        from cinder.db.sqlalchemy import models
        vol = models.Volume(**values)
        self.volumes[values['id']] = vol
        return vol

    def volume_get(self, context, volume_id):
        from cinder import exception
        try:
            return self.volumes[volume_id]
        except KeyError:
            raise exception.VolumeNotFound(volume_id=volume_id)

    def volume_update(self, context, volume_id, values):
        vol = self.volume_get(context, volume_id)
        for k, v in values.items():
            setattr(vol, k, v)
        self.updates.setdefault(volume_id, {}).update(values)
        return vol

    def volume_metadata_get(self, context, volume_id):
        self.volume_get(context, volume_id)
        return dict(self.metadata.get(volume_id, {}))

    def volume_metadata_update(self, context, volume_id, metadata, delete,
                               *args, **kwargs):
        self.volume_get(context, volume_id)
        cur = {} if delete else dict(self.metadata.get(volume_id, {}))
        cur.update(metadata)
        self.metadata[volume_id] = cur
        return cur

    def volume_glance_metadata_get(self, context, volume_id):
        from cinder import exception
        self.volume_get(context, volume_id)
        meta = self.glance.get(volume_id)
        if not meta:
            raise exception.GlanceMetadataNotFound(id=volume_id)
        return [FakeGlanceMeta(k, v) for k, v in meta.items()]

    def volume_glance_metadata_delete_by_volume(self, context, volume_id):
        self.glance.pop(volume_id, None)

    def volume_glance_metadata_create(self, context, volume_id, key, value):
        self.glance.setdefault(volume_id, {})[key] = str(value)

    def volume_type_get(self, context, id, *args, **kwargs):
        return {'id': id, 'name': 'harness', 'deleted': False}


class BackupRegistry(object):
    """Stands in for the backups table: save() stores, get_by_id() loads."""

    def __init__(self):
        self.rows = {}
        self.loader = None   # callable(id) -> objects.Backup or None

    def store(self, backup):
        self.rows[backup.id] = backup.obj_clone()

    def load(self, context, backup_id):
        from cinder import exception
        if backup_id not in self.rows and self.loader is not None:
            b = self.loader(backup_id)
            if b is not None:
                self.rows[backup_id] = b
        if backup_id not in self.rows:
            raise exception.BackupNotFound(backup_id=backup_id)
        b = self.rows[backup_id].obj_clone()
        b._context = context
        return b


def patch_db(registry):
    """Patch objects.Backup persistence onto the in-memory registry."""
    from cinder import objects

    def save(self):
        # Same as objects.Backup.save, with the DB update replaced.
        self.obj_reset_changes()
        registry.store(self)

    def get_by_id(cls, context, id, *args, **kwargs):
        return registry.load(context, id)

    return [mock.patch.object(objects.Backup, 'save', save),
            mock.patch.object(objects.Backup, 'get_by_id',
                              classmethod(get_by_id))]


def make_driver(context, fake_db):
    from cinder.backup.drivers import posix
    with mock.patch('cinder.db.dispose_engine'):
        driver = posix.PosixBackupDriver(context)
    driver.db = fake_db
    driver.backup_meta_api.db = fake_db
    return driver


def admin_context():
    from cinder import context
    return context.RequestContext(user_id='harness-user',
                                  project_id='harness-project',
                                  is_admin=True)


# ---------------------------------------------------------------------------
# Discovering backups in the store

def default_container(backup_id):
    # Same as PosixBackupDriver.update_container_name(backup, None).
    return os.path.join(backup_id[0:2], backup_id[2:4], backup_id)


def find_prefix(backup_path, container, backup_id):
    """The object prefix (Cinder's backup.service_metadata) of backup_id.

    Found by listing the container for the backup's `<prefix>_metadata`.
    Returns None if the container or the metadata object is missing.
    """
    path = os.path.join(backup_path, container)
    try:
        names = os.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    metas = [n for n in names if n.endswith('_metadata')]
    mine = [n for n in metas if n.endswith('_backup_%s_metadata' % backup_id)]
    if not mine and container == default_container(backup_id) and \
            len(metas) == 1:
        mine = metas   # a per-backup container with one foreign-named prefix
    if not mine:
        return None
    if len(mine) > 1:
        raise HarnessError('container %s holds several _metadata objects for '
                           'backup %s: %s' % (path, backup_id, sorted(mine)))
    return mine[0][:-len('_metadata')]


def locate(backup_path, backup_id, containers):
    """(container, prefix) of backup_id, trying the given containers."""
    tried = []
    for c in containers:
        if c is None or c in tried:
            continue
        tried.append(c)
        prefix = find_prefix(backup_path, c, backup_id)
        if prefix is not None:
            return c, prefix
    raise HarnessError('backup %s not found: no *_metadata object for it in %s'
                       % (backup_id, ', '.join(os.path.join(backup_path, c)
                                               for c in tried)))


def read_json(backup_path, container, name):
    with open(os.path.join(backup_path, container, name), 'rb') as f:
        return json.loads(f.read().decode('utf-8'))


def backup_from_store(context, backup_path, backup_id, containers,
                      parent_override=None, status='available'):
    """A Backup object (as Cinder's DB row would be) built from the store."""
    from cinder import objects
    from cinder.objects import fields
    container, prefix = locate(backup_path, backup_id, containers)
    md = read_json(backup_path, container, prefix + '_metadata')
    parent_id = md.get('parent_id')
    if parent_override is not None:
        parent_id = parent_override or None
    size = None
    try:
        vm = md.get('volume_meta')
        if vm:
            size = json.loads(vm)['volume-base-metadata']['size']
    except (ValueError, KeyError, TypeError):
        size = None
    if size is None:
        # DB backup.size = volume size in GiB; derive it from the sha list.
        try:
            sf = read_json(backup_path, container, prefix + '_sha256file')
            size = max(1, math.ceil(len(sf['sha256s']) * sf['chunk_size']
                                    / GiB))
        except (OSError, ValueError, KeyError, TypeError):
            size = 1
    created_at = None
    try:
        created_at = datetime.datetime.fromisoformat(md['created_at'])
    except (KeyError, ValueError, TypeError):
        pass
    objs = md.get('objects') or []
    b = objects.Backup(
        context=context,
        id=backup_id,
        user_id='harness-user',
        project_id='harness-project',
        volume_id=md.get('volume_id'),
        host='harness',
        availability_zone='nova',
        container=container,
        parent_id=parent_id,
        status=status,
        fail_reason=None,
        size=size,
        display_name=md.get('backup_name'),
        display_description=md.get('backup_description'),
        service_metadata=prefix,
        service=POSIX_DRIVER,
        object_count=len(objs),
        temp_volume_id=None,
        temp_snapshot_id=None,
        num_dependent_backups=0,
        snapshot_id=None,
        data_timestamp=created_at,
        created_at=created_at,
        restore_volume_id=None,
        metadata={},
        encryption_key_id=None,
    )
    assert status in fields.BackupStatus.ALL
    b.obj_reset_changes()
    return b


# ---------------------------------------------------------------------------
# Commands

def cmd_backup(args):
    if args.object_size <= 0 or args.block_size <= 0:
        raise HarnessError('--object-size and --block-size must be > 0')
    setup_cinder(args, args.object_size, args.block_size, args.compression)
    from eventlet import tpool
    from oslo_utils import timeutils
    from cinder import objects
    from cinder.objects import fields

    backup_path = os.path.abspath(args.backup_path)
    nbytes = os.stat(args.volume).st_size
    size_gib = args.volume_size_gib
    if size_gib is None:
        # Cinder volumes are whole GiB; a zero-length file is still a 1 GiB
        # volume here (Cinder rejects size <= 0 with InvalidVolume).
        size_gib = max(1, math.ceil(nbytes / GiB))

    context = admin_context()
    registry = BackupRegistry()
    fake_db = FakeDB()
    now = timeutils.utcnow()
    fake_db.add_volume(
        id=args.volume_id, created_at=now, updated_at=None, deleted_at=None,
        deleted=False, use_quota=True, user_id='harness-user',
        project_id='harness-project', host='harness@posix#posix',
        size=size_gib, availability_zone='nova',
        # During a backup the API has set status backing-up.
        status='backing-up', previous_status='available',
        attach_status='detached', display_name=args.volume_name,
        display_description=None, volume_type_id=HARNESS_VOLUME_TYPE_ID,
        encryption_key_id=args.encryption_key_id, bootable=False,
        multiattach=False, shared_targets=True)
    vm = kv_list(args.volume_metadata, '--volume-metadata')
    if vm:
        fake_db.metadata[args.volume_id] = vm
    gm = kv_list(args.glance_metadata, '--glance-metadata')
    if gm:
        fake_db.glance[args.volume_id] = gm

    patches = patch_db(registry)
    for p in patches:
        p.start()
    try:
        if args.parent_id:
            pc = [args.parent_container, default_container(args.parent_id),
                  args.container]
            registry.loader = lambda bid: (
                backup_from_store(context, backup_path, bid, pc)
                if bid == args.parent_id else None)

        backup = objects.Backup(
            context=context,
            id=args.backup_id,
            user_id='harness-user',
            project_id='harness-project',
            volume_id=args.volume_id,
            host='harness',
            availability_zone='nova',
            container=args.container,
            parent_id=args.parent_id,
            status=fields.BackupStatus.CREATING,
            fail_reason=None,
            size=size_gib,
            display_name=args.name,
            display_description=args.description,
            service_metadata=None,
            service=POSIX_DRIVER,
            object_count=0,
            temp_volume_id=None,
            temp_snapshot_id=None,
            num_dependent_backups=0,
            snapshot_id=None,
            data_timestamp=now,
            created_at=now,
            restore_volume_id=None,
            metadata={},
            encryption_key_id=args.encryption_key_id,
        )
        backup.save()

        driver = make_driver(context, fake_db)
        t0 = time.monotonic()
        # As BackupManager.continue_backup: open 'rb', tpool.Proxy.
        with open(args.volume, 'rb') as device_file:
            driver.backup(backup, tpool.Proxy(device_file))
        secs = time.monotonic() - t0
    finally:
        for p in reversed(patches):
            p.stop()

    print(json.dumps({'backup_id': backup.id,
                      'container': backup.container,
                      'prefix': backup.service_metadata,
                      'object_count': backup.object_count,
                      'parent_id': backup.parent_id,
                      'bytes': nbytes,
                      'seconds': round(secs, 3)}, sort_keys=True))


def cmd_restore(args):
    setup_cinder(args)
    from eventlet import tpool
    from oslo_utils import timeutils
    from cinder.objects import fields

    backup_path = os.path.abspath(args.backup_path)
    context = admin_context()
    registry = BackupRegistry()
    fake_db = FakeDB()

    chain_parent = None   # id -> parent id ('' for none), from --chain
    if args.chain:
        ids = [i.strip() for i in args.chain.split(',') if i.strip()]
        if not ids or ids[-1] != args.backup_id:
            if args.backup_id in ids:
                raise HarnessError('--chain must end with --backup-id')
            ids.append(args.backup_id)
        if len(set(ids)) != len(ids):
            raise HarnessError('--chain repeats a backup id')
        chain_parent = {ids[0]: ''}
        for i in range(1, len(ids)):
            chain_parent[ids[i]] = ids[i - 1]

    child_containers = {}   # id -> container of the backup naming it parent

    def load(bid):
        pc = [default_container(bid), child_containers.get(bid)]
        if bid == args.backup_id:
            pc = [args.container or default_container(bid)]
        override = chain_parent.get(bid) if chain_parent else None
        if chain_parent is not None and bid not in chain_parent:
            return None
        status = (fields.BackupStatus.RESTORING if bid == args.backup_id
                  else fields.BackupStatus.AVAILABLE)
        b = backup_from_store(context, backup_path, bid, pc,
                              parent_override=override, status=status)
        if b.parent_id:
            child_containers.setdefault(b.parent_id, b.container)
        return b

    registry.loader = load

    patches = patch_db(registry)
    for p in patches:
        p.start()
    try:
        from cinder import objects
        backup = objects.Backup.get_by_id(context, args.backup_id)
        # The restore target, as the API creates it for a restore to a new
        # volume (status restoring-backup, name restore_backup_<id>).
        fake_db.add_volume(
            id=args.volume_id, created_at=timeutils.utcnow(), deleted=False,
            use_quota=True, user_id='harness-user',
            project_id='harness-project', host='harness@posix#posix',
            size=backup.size or 1, availability_zone='nova',
            status='restoring-backup', attach_status='detached',
            display_name='restore_backup_%s' % args.backup_id,
            display_description='auto-created_from_restore_from_backup',
            volume_type_id=None, encryption_key_id=None, bootable=False,
            multiattach=False, shared_targets=True)

        driver = make_driver(context, fake_db)
        t0 = time.monotonic()
        # As BackupManager._run_restore: open 'wb', tpool.Proxy.
        with open(args.out, 'wb') as device_file:
            driver.restore(backup, args.volume_id, tpool.Proxy(device_file))
        secs = time.monotonic() - t0

        chain = []
        cur = backup
        while cur is not None:
            chain.append(cur.id)
            cur = (objects.Backup.get_by_id(context, cur.parent_id)
                   if cur.parent_id else None)
    finally:
        for p in reversed(patches):
            p.stop()

    if args.summary:
        vol = fake_db.volumes[args.volume_id]
        print(json.dumps({
            'backup_id': args.backup_id,
            'chain': list(reversed(chain)),
            'display_name': vol.display_name,
            'display_description': vol.display_description,
            'bootable': vol.bootable,
            'volume_type_id': vol.volume_type_id,
            'volume_metadata': fake_db.metadata.get(args.volume_id, {}),
            'glance_metadata': fake_db.glance.get(args.volume_id, {}),
            'seconds': round(secs, 3),
        }, sort_keys=True, default=str))


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.cmd == 'backup':
            cmd_backup(args)
        else:
            cmd_restore(args)
    except Exception as e:  # report every failure on stderr, exit 1
        if args.debug:
            traceback.print_exc(file=sys.stderr)
        else:
            tb = traceback.extract_tb(e.__traceback__)
            where = ''
            if tb:
                f = tb[-1]
                where = ' (at %s:%d in %s)' % (f.filename, f.lineno, f.name)
            print('cinder_posix.py %s: %s.%s: %s%s' % (
                args.cmd, type(e).__module__, type(e).__name__, e, where),
                file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
