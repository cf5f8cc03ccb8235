package flush

import (
	"context"
	"errors"
	"fmt"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/layout"
)

// resolveFailedCommit decides what a failed flush commit did, from its
// manifest record: committed, the flush succeeded; not committed, the
// segment is unlisted and its file removed; unknown, the segment stays
// visible (harmless: either the batch applied, or the buffer still holds
// the same versions) and the table neither flushes nor compacts until
// settle learns the outcome.
func (m *Manager) resolveFailedCommit(tr *tier, seg *segFile, version []byte, cause error) error {
	return m.failedCommit(tr, &doubt{
		what:               "the commit of " + seg.Path,
		key:                manifestKey(&seg.Segment),
		presentIfCommitted: true,
		committed: func() {
			tr.settled(seg, true)
			tr.workVersion = version
		},
		notCommitted: func() {
			// Unlisted, the file goes when the last reader that saw
			// the segment lets it go.
			tr.settled(seg, false)
		},
	}, cause)
}

// A doubt is a commit batch that returned an error, whose effect is not
// known yet: an error may not say whether the batch applied (a lost
// reply), and reading back one manifest record the batch writes or
// deletes tells, unless that read fails too (the backend is unreachable).
// Until a doubt is resolved the table neither flushes nor compacts, so
// that no version is written to two segments and no file is forgotten;
// reads go on, as the listed segments are right whichever the outcome.
type doubt struct {
	what string // "the commit of <path>", for errors
	// key is the manifest record read back: present after the batch
	// applied when presentIfCommitted, absent otherwise.
	key                     []byte
	presentIfCommitted      bool
	committed, notCommitted func() // what to do in each case
	// files are segments the batch records, listed only once it is known
	// to have applied: a drop of the table removes them.
	files []*segFile
}

// outcome is what a commit batch that returned an error did.
type outcome int

const (
	committed outcome = iota
	notCommitted
	outcomeUnknown
)

// commitOutcome reads back d's record, and the read's error when it fails
// (the outcome is then unknown).
func (m *Manager) commitOutcome(d *doubt) (outcome, error) {
	// The caller's context may be what failed the batch.
	_, err := m.b.Get(context.Background(), layout.Manifests, d.key)
	present := err == nil
	switch {
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return outcomeUnknown, err
	case present == d.presentIfCommitted:
		return committed, nil
	}
	return notCommitted, nil
}

// failedCommit acts on d, a commit batch of tr that failed with cause: it
// returns nil once d is known to have applied, cause when it did not, and
// otherwise keeps d for settle and returns an error that says the outcome
// is unknown. The caller holds tr.flushMu.
func (m *Manager) failedCommit(tr *tier, d *doubt, cause error) error {
	name := tr.table().FullName()
	switch o, rerr := m.commitOutcome(d); o {
	case committed:
		d.committed()
		return nil
	case notCommitted:
		d.notCommitted()
		return fmt.Errorf("flush: %s: %s: %w", name, d.what, cause)
	default:
		tr.doubts = append(tr.doubts, d)
		return fmt.Errorf("flush: %s: %s: outcome unknown (reading it back: %v); the table flushes and compacts again once it is known: %w",
			name, d.what, rerr, cause)
	}
}

// resolveDoubts learns the outcome of tr's doubts, oldest first, and acts
// on each; it fails while one is still unknown. The caller holds
// tr.flushMu.
func (m *Manager) resolveDoubts(tr *tier) error {
	for len(tr.doubts) > 0 {
		d := tr.doubts[0]
		o, err := m.commitOutcome(d)
		switch o {
		case committed:
			d.committed()
		case notCommitted:
			d.notCommitted()
		default:
			return fmt.Errorf("flush: %s: the outcome of %s is still unknown: %w", tr.table().FullName(), d.what, err)
		}
		tr.doubts = tr.doubts[1:]
	}
	tr.doubts = nil
	return nil
}
