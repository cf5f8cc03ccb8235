package redis_test

import (
	"context"
	"fmt"
	"log"
	"os"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/redis"
)

// redisAddr is the server the examples talk to; the package's tests start
// one and export its address in KALAMDB_TEST_REDIS_ADDR.
func redisAddr() string { return os.Getenv("KALAMDB_TEST_REDIS_ADDR") }

// Open a Redis backend from Go, write a batch atomically and read it back
// with a prefix scan.
func ExampleOpenWith() {
	ctx := context.Background()
	cfg := redis.DefaultConfig()
	cfg.Addr = redisAddr() // e.g. "10.0.0.5:6379"
	cfg.KeyPrefix = "example-openwith"
	b, err := redis.OpenWith(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	users := store.MustPartition("users")
	if err := b.CreatePartition(ctx, users); err != nil {
		log.Fatal(err)
	}
	err = b.Batch(ctx, []store.Operation{
		store.PutOp(users, []byte("user/1"), []byte("ada")),
		store.PutOp(users, []byte("user/2"), []byte("grace")),
		store.PutOp(users, []byte("team/1"), []byte("compilers")),
	})
	if err != nil {
		log.Fatal(err)
	}
	it, err := b.Scan(ctx, users, store.ScanOptions{Prefix: []byte("user/")})
	if err != nil {
		log.Fatal(err)
	}
	defer it.Close()
	for it.Next() {
		fmt.Printf("%s = %s\n", it.Key(), it.Value())
	}
	if err := it.Err(); err != nil {
		log.Fatal(err)
	}
	fmt.Println(b.Capabilities())
	// Output:
	// user/1 = ada
	// user/2 = grace
	// {false true true 0 0}
}

// Open the backend by name, as the server does with the [storage.redis]
// section of config.toml. A misspelled key is an error that names it.
func ExampleRegister() {
	reg := store.NewRegistry()
	redis.Register(reg)

	_, err := reg.Open(context.Background(), "redis", store.ConfigMap{"adress": "10.0.0.5:6379"})
	fmt.Println(err)

	b, err := reg.Open(context.Background(), "redis", store.ConfigMap{
		"addr":         redisAddr(),
		"key_prefix":   "example-register",
		"read_timeout": "2s",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	ok, err := b.PartitionExists(context.Background(), store.MustPartition("users"))
	fmt.Println(ok, err)
	// Output:
	// opening storage backend "redis": storage.redis.adress: unknown key; known keys: addr, username, password, db, tls, tls_ca_file, tls_server_name, dial_timeout, read_timeout, write_timeout, pool_size, key_prefix, scan_chunk
	// false <nil>
}

// Config prints without its password, so it can be logged.
func ExampleConfig_String() {
	cfg := redis.DefaultConfig()
	cfg.Password = "s3cret"
	fmt.Println(cfg)
	// Output:
	// redis.Config{addr="127.0.0.1:6379" username="" password="[redacted]" db=0 tls=false tls_ca_file="" tls_server_name="" dial_timeout=5s read_timeout=3s write_timeout=3s pool_size=0 key_prefix="kalamdb" scan_chunk=256}
}
