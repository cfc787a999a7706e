package ceph

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/chunkback/chunkback/target"
)

func TestRADOSConfigValidate(t *testing.T) {
	good := []Config{
		{},
		{Conf: "/etc/ceph/ceph.conf", User: "cinder-backup", Keyring: "/etc/ceph/k", Pool: "backups",
			Namespace: "ns", Prefix: "site1/backups", ChunkSize: 4 << 20, ConnectTimeout: time.Second,
			OpTimeout: time.Second, MaxAttempts: 1, RetryInterval: time.Millisecond},
	}
	for _, c := range good {
		if err := c.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", c, err)
		}
	}
	bad := []struct {
		cfg   Config
		field string
	}{
		{Config{Conf: "ceph\n.conf"}, "Conf"},
		{Config{User: "client.cinder"}, "User"},
		{Config{User: "cin der"}, "User"},
		{Config{Keyring: "k\x00"}, "Keyring"},
		{Config{Pool: "p\tq"}, "Pool"},
		{Config{Namespace: "n\n"}, "Namespace"},
		{Config{Prefix: "/abs"}, "Prefix"},
		{Config{Prefix: "a//b"}, "Prefix"},
		{Config{Prefix: "trailing/"}, "Prefix"},
		{Config{Prefix: "../up"}, "Prefix"},
		{Config{ChunkSize: -1}, "ChunkSize"},
		{Config{ConnectTimeout: -time.Second}, "ConnectTimeout"},
		{Config{OpTimeout: -time.Second}, "OpTimeout"},
		{Config{MaxAttempts: -1}, "MaxAttempts"},
		{Config{RetryInterval: -time.Second}, "RetryInterval"},
	}
	for _, b := range bad {
		err := b.cfg.Validate()
		if !errors.Is(err, target.ErrInvalidArgument) {
			t.Errorf("Validate(%+v) = %v, want an error wrapping ErrInvalidArgument", b.cfg, err)
			continue
		}
		if !strings.Contains(err.Error(), "Config."+b.field) {
			t.Errorf("Validate(%+v) = %q, want it to name Config.%s", b.cfg, err, b.field)
		}
	}
}

func TestRADOSConfigDefaults(t *testing.T) {
	d := Config{}.withDefaults()
	if d.User != "cinder" || d.Pool != "backups" || d.ChunkSize != 134217728 {
		t.Errorf("defaults = user %q pool %q chunk %d, want Cinder's cinder, backups, 134217728", d.User, d.Pool, d.ChunkSize)
	}
	if d.Conf != "" || d.Keyring != "" || d.Namespace != "" || d.Prefix != "" {
		t.Errorf("defaults fill Conf/Keyring/Namespace/Prefix: %+v", d)
	}
}

func TestRADOSConfigRetryPolicy(t *testing.T) {
	p := Config{}.RetryPolicy()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if p.MaxAttempts != 4 || p.BaseDelay != 5*time.Second || p.MaxDelay != 20*time.Second || p.Mode != target.RetryLegacy {
		t.Errorf("default policy = %+v, want 4 attempts, 5s base (rados_connection_retries/interval), 20s max, legacy", p)
	}
	p = Config{MaxAttempts: 1, RetryInterval: 10 * time.Millisecond}.RetryPolicy()
	if p.MaxAttempts != 1 || p.BaseDelay != 10*time.Millisecond || p.MaxDelay != 40*time.Millisecond {
		t.Errorf("policy = %+v, want 1 attempt, 10ms base, 40ms max", p)
	}
}
