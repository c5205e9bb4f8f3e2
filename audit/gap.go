package audit

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ErrGap is wrapped by Open's error when the trail ends before its anchored
// head: records that were acknowledged are gone (a file deleted, the tail
// cut). Nothing is changed. Verify names the gap; AcknowledgeGap records
// it, after which Open continues the chain.
var ErrGap = errors.New("audit: records missing from the trail")

// Gap is the body of an acknowledged-gap record (EventType EventTypeGap):
// an operator's signed statement that records FirstSeq..LastSeq are lost,
// why, and who said so. It takes sequence number LastSeq+1 and links to the
// last record left before the gap (HeadHash, "" when none is left), so the
// chain, and Verify, go on across the gap; it seals the chain like a digest.
type Gap struct {
	FirstSeq  uint64 `json:"firstSeq"`
	LastSeq   uint64 `json:"lastSeq"`
	HeadHash  string `json:"headHash"`
	Reason    string `json:"reason"`
	By        string `json:"by"`
	Signature []byte `json:"signature"`
}

// signedHash covers the label, the range, the head hash (32 zero bytes when
// none), the reason and who gave it (each length-prefixed) and eventTime.
func (g *Gap) signedHash(eventTime string) ([32]byte, error) {
	var head [32]byte
	if g.HeadHash != "" {
		if len(g.HeadHash) != 2*len(head) {
			return head, errors.New("headHash is not a SHA-256")
		}
		if _, err := hex.Decode(head[:], []byte(g.HeadHash)); err != nil {
			return head, errors.New("headHash is not a SHA-256")
		}
	}
	msg := make([]byte, 0, len(labelGap)+16+len(head)+8+len(g.Reason)+len(g.By)+len(eventTime))
	msg = append(msg, labelGap...)
	msg = binary.BigEndian.AppendUint64(msg, g.FirstSeq)
	msg = binary.BigEndian.AppendUint64(msg, g.LastSeq)
	msg = append(msg, head[:]...)
	msg = binary.BigEndian.AppendUint32(msg, uint32(len(g.Reason)))
	msg = append(msg, g.Reason...)
	msg = binary.BigEndian.AppendUint32(msg, uint32(len(g.By)))
	msg = append(msg, g.By...)
	msg = append(msg, eventTime...)
	return sha256.Sum256(msg), nil
}

func (g *Gap) sign(s crypto.Signer, eventTime string) error {
	h, err := g.signedHash(eventTime)
	if err != nil {
		return err
	}
	g.Signature, err = s.Sign(rand.Reader, h[:], crypto.SHA256)
	return err
}

func (g *Gap) verify(pub *ecdsa.PublicKey, eventTime string) bool {
	h, err := g.signedHash(eventTime)
	return err == nil && pub != nil && ecdsa.VerifyASN1(pub, h[:], g.Signature)
}

// gapAck is what AcknowledgeGap asks Open to do.
type gapAck struct {
	reason, by string
	gap        *Gap // the record written
}

// AcknowledgeGap is the operator's answer to Open's ErrGap: with the
// Writer stopped, it appends to the trail in cfg.Dir a signed gap record
// for the records between the end of the trail and its anchored head,
// naming reason and by (who acknowledges), and moves the anchor past it.
// Verify and Open then accept the trail. It fails when there is no gap.
func AcknowledgeGap(cfg Config, reason, by string) (*Gap, error) {
	reason, by = strings.TrimSpace(reason), strings.TrimSpace(by)
	if reason == "" || by == "" {
		return nil, errors.New("audit: acknowledging a gap needs a reason and who acknowledges it")
	}
	cfg.gapAck = &gapAck{reason: reason, by: by}
	w, err := Open(cfg)
	if err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return cfg.gapAck.gap, nil
}

// appendGap buffers the gap record for records w.seq+1..last, linked to
// the line w.prev.
func (w *Writer) appendGap(last uint64, ack *gapAck) error {
	now := w.cfg.Now()
	g := &Gap{FirstSeq: w.seq + 1, LastSeq: last, Reason: ack.reason, By: ack.by}
	if w.hasPrev {
		g.HeadHash = hex.EncodeToString(w.prev[:])
	}
	eventTime := now.UTC().Format("2006-01-02T15:04:05Z")
	if err := g.sign(w.cfg.Signer, eventTime); err != nil {
		return fmt.Errorf("sign gap: %w", err)
	}
	r := Record{
		EventVersion: EventVersion,
		EventTime:    eventTime,
		EventSource:  EventSource,
		EventName:    EventNameGap,
		EventID:      NewEventID(),
		EventType:    EventTypeGap,
		Gap:          g,
	}
	body, err := r.appendBody(nil)
	if err != nil {
		return err
	}
	w.seq = last + 1
	w.appendLine(body)
	w.sealed = w.seq
	ack.gap = g
	return nil
}
