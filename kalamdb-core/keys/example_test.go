package keys_test

import (
	"bytes"
	"fmt"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/keys"
)

// A user-table key is the user id followed by the primary key. Because each
// component is self-delimiting, the prefix of user "a" never selects the rows
// of user "a\x00b" or "a:b".
func Example() {
	key := func(user string, id int64) []byte {
		return keys.AppendInt64(keys.AppendString(nil, user), id)
	}
	prefix := keys.AppendString(nil, "a")
	for _, user := range []string{"a", "a\x00b", "a:b"} {
		fmt.Printf("%q in a's rows: %v\n", user, bytes.HasPrefix(key(user, 7), prefix))
	}
	fmt.Println(bytes.Compare(key("a", -1), key("a", 1)))

	u, rest, _ := keys.DecodeString(key("a:b", 42))
	id, _, _ := keys.DecodeInt64(rest)
	fmt.Printf("%q %d\n", u, id)
	// Output:
	// "a" in a's rows: true
	// "a\x00b" in a's rows: false
	// "a:b" in a's rows: false
	// -1
	// "a:b" 42
}
