package segment_test

import (
	"fmt"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
)

// ExampleUserDir shows how user ids become directory names: readable when
// they can be, hex otherwise, so that no id escapes or collides.
func ExampleUserDir() {
	for _, id := range []string{"alice", "Alice", "../etc", "a/b"} {
		dir, _ := segment.UserDir(id)
		back, _ := segment.ParseUserDir(dir)
		fmt.Printf("%q -> %s -> %q\n", id, dir, back)
	}
	// Output:
	// "alice" -> u-alice -> "alice"
	// "Alice" -> x-416c696365 -> "Alice"
	// "../etc" -> x-2e2e2f657463 -> "../etc"
	// "a/b" -> x-612f62 -> "a/b"
}
