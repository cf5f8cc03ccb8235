package segment

import (
	"path/filepath"
)

// LocalDir reports whether s keeps its objects as files of a local
// directory (FSStore over DirFS), and returns that directory, absolute: the
// object name is then the file filepath.Join(dir, filepath.FromSlash(name)),
// which another reader of Parquet files may open itself. A Store of any
// other kind (an object store, a disk cache in front of one, another FS)
// returns false.
func LocalDir(s Store) (string, bool) {
	fs, ok := s.(*fsStore)
	if !ok {
		return "", false
	}
	o, ok := fs.fs.(*osFS)
	if !ok {
		return "", false
	}
	dir, err := filepath.Abs(o.root)
	if err != nil {
		return "", false
	}
	return dir, true
}
