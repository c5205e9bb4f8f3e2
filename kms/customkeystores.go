package kms

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
)

// Custom key stores are AWS's CloudHSM key stores, held by the server's own
// PKCS#11 HSM (the one that holds the root key, through the hsm pool): keys
// created in one are generated inside the HSM, never leave it, and every
// Encrypt, Decrypt and GenerateDataKey under them is an HSM call.
//
// The API is AWS's. CloudHsmClusterId names the association, as AWS's does
// (one store per cluster ID per account); the trust anchor must be a PEM
// certificate and is returned by DescribeCustomKeyStores. KeyStorePassword
// is AWS's kmsuser password: Coffer logs in to its HSM with the PIN it was
// started with, so the password is checked against AWS's rules and then
// dropped, never stored, logged or audited.
//
// ConnectCustomKeyStore checks that the HSM answers and that its login
// holds, synchronously (AWS answers first and connects in the background;
// either way the outcome is read with DescribeCustomKeyStores).
// DisconnectCustomKeyStore makes the store's Enabled and Disabled keys
// Unavailable; EnableKey and DisableKey on them are recorded and take
// effect when the store connects again, as AWS does.

// Connection states and the custom key store type, as AWS spells them.
const (
	StoreConnected    = "CONNECTED"
	StoreDisconnected = "DISCONNECTED"
	StoreFailed       = "FAILED"
	StoreTypeCloudHSM = "AWS_CLOUDHSM"
	StoreTypeExternal = "EXTERNAL_KEY_STORE"
	OriginCloudHSM    = "AWS_CLOUDHSM"
)

// customKeyStore is a custom key store as stored.
type customKeyStore struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Account     string    `json:"account"`
	ClusterID   string    `json:"clusterId"`
	TrustAnchor string    `json:"trustAnchor"`
	State       string    `json:"state"`
	ErrorCode   string    `json:"errorCode,omitempty"`
	Created     time.Time `json:"created"`
}

// storeKey is the store record's key: the account keeps IDs private to it.
func storeKey(account, id string) string { return account + "/" + id }

// getKeyStoreTx returns the account's store id, nil if there is none.
func getKeyStoreTx(tx keystore.Tx, account, id string) (*customKeyStore, error) {
	raw, err := tx.Get(bucketKeyStores, storeKey(account, id))
	if err != nil || raw == nil {
		return nil, err
	}
	ks := new(customKeyStore)
	if err := json.Unmarshal(raw, ks); err != nil {
		return nil, err
	}
	return ks, nil
}

func scanKeyStores(tx keystore.Tx, account string, fn func(*customKeyStore) bool) error {
	var bad error
	err := tx.Scan(bucketKeyStores, account+"/", "", func(_ string, raw []byte) bool {
		ks := new(customKeyStore)
		if bad = json.Unmarshal(raw, ks); bad != nil {
			return false
		}
		return fn(ks)
	})
	if err != nil {
		return err
	}
	return bad
}

func keyStoreNotFound(id string) error {
	return newError(ErrCustomKeyStoreNotFound, "Custom key store %s does not exist in this account.", id)
}

// keyStoreTx is getKeyStoreTx for the operations that name a store: one
// that is not there is CustomKeyStoreNotFoundException.
func keyStoreTx(tx keystore.Tx, account, id string) (*customKeyStore, error) {
	ks, err := getKeyStoreTx(tx, account, id)
	if err == nil && ks == nil {
		err = keyStoreNotFound(id)
	}
	return ks, err
}

// storeClash reports a store of the account other than self that already
// has the name or the cluster (each nil: not checked).
func storeClash(tx keystore.Tx, account, self string, name, clusterID *string) error {
	var clash error
	err := scanKeyStores(tx, account, func(o *customKeyStore) bool {
		switch {
		case o.ID == self:
		case name != nil && o.Name == *name:
			clash = newError(ErrCustomKeyStoreNameInUse, "A custom key store named %s already exists in this account.", truncate(o.Name))
		case clusterID != nil && o.ClusterID == *clusterID:
			clash = newError(ErrCloudHsmClusterInUse, "Cluster %s is already associated with custom key store %s.", truncate(o.ClusterID), o.ID)
		}
		return clash == nil
	})
	if err != nil {
		return err
	}
	return clash
}

// keyStore returns the caller's custom key store id.
func (s *Service) keyStore(ctx context.Context, account, id string) (*customKeyStore, error) {
	var ks *customKeyStore
	err := s.store.View(ctx, func(tx keystore.Tx) (err error) {
		ks, err = keyStoreTx(tx, account, id)
		return err
	})
	if err != nil {
		return nil, internal(err)
	}
	return ks, nil
}

// connectedKeyStore is keyStore for operations that need the HSM now.
func (s *Service) connectedKeyStore(ctx context.Context, account, id string) (*customKeyStore, error) {
	ks, err := s.keyStore(ctx, account, id)
	if err != nil {
		return nil, err
	}
	if ks.State != StoreConnected || s.ks == nil {
		return nil, newError(ErrCustomKeyStoreInvalidState, "Custom key store %s is %s; it must be CONNECTED.", id, ks.State)
	}
	return ks, nil
}

// checkStoreFields validates what Create and Update take in common.
func checkStoreFields(v *validator, clusterID, trustAnchor, password *string) {
	if clusterID != nil {
		v.length("cloudHsmClusterId", *clusterID, 19, 24)
	}
	if trustAnchor != nil {
		v.length("trustAnchorCertificate", *trustAnchor, 1, 5000)
	}
	if password != nil && (len(*password) < 7 || len(*password) > 32) {
		v.fail("keyStorePassword", hidden{}, "Member must have length between 7 and 32")
	}
}

func checkTrustAnchor(pemText string) error {
	b, rest := pem.Decode([]byte(pemText))
	if b == nil || b.Type != "CERTIFICATE" || len(b.Bytes) == 0 || len(bytes.TrimSpace(rest)) > 0 {
		return newError(ErrIncorrectTrustAnchor, "The trust anchor certificate is not one PEM-encoded certificate.")
	}
	return nil
}

// CreateCustomKeyStoreInput is the CreateCustomKeyStore request.
type CreateCustomKeyStoreInput struct {
	CustomKeyStoreName     string          `json:"CustomKeyStoreName"`
	CloudHsmClusterId      *string         `json:"CloudHsmClusterId"`
	TrustAnchorCertificate *string         `json:"TrustAnchorCertificate"`
	KeyStorePassword       *string         `json:"KeyStorePassword"`
	CustomKeyStoreType     string          `json:"CustomKeyStoreType"`
	XksProxyUriEndpoint    string          `json:"XksProxyUriEndpoint"`
	XksProxyConfiguration  json.RawMessage `json:"XksProxyAuthenticationCredential"`
}

// CreateCustomKeyStoreOutput is the CreateCustomKeyStore response.
type CreateCustomKeyStoreOutput struct {
	CustomKeyStoreId string `json:"CustomKeyStoreId"`
}

// CreateCustomKeyStore records a custom key store, DISCONNECTED, as AWS does.
func (s *Service) CreateCustomKeyStore(ctx context.Context, c *Caller, in *CreateCustomKeyStoreInput) (*CreateCustomKeyStoreOutput, error) {
	var v validator
	v.length("customKeyStoreName", in.CustomKeyStoreName, 1, 256)
	v.enum("customKeyStoreType", in.CustomKeyStoreType, []string{StoreTypeCloudHSM, StoreTypeExternal})
	checkStoreFields(&v, in.CloudHsmClusterId, in.TrustAnchorCertificate, in.KeyStorePassword)
	if err := v.err(); err != nil {
		return nil, err
	}
	if in.CustomKeyStoreType == StoreTypeExternal || in.XksProxyUriEndpoint != "" || len(in.XksProxyConfiguration) > 0 {
		return nil, newError(ErrUnsupportedOperation, "External key stores are not supported by this server.")
	}
	if in.CloudHsmClusterId == nil || in.TrustAnchorCertificate == nil || in.KeyStorePassword == nil {
		return nil, newError(ErrValidation, "An AWS_CLOUDHSM key store needs CloudHsmClusterId, TrustAnchorCertificate and KeyStorePassword.")
	}
	if err := checkTrustAnchor(*in.TrustAnchorCertificate); err != nil {
		return nil, err
	}
	if err := s.authorizeIdentity(ctx, c, opCreateCustomKeyStore.Action, "*"); err != nil {
		return nil, err
	}
	if s.ks == nil {
		return nil, newError(ErrCloudHsmClusterNotFound, "This server has no HSM to hold custom key stores: start it with --hsm pkcs11.")
	}
	raw, err := s.randomBytes(9)
	if err != nil {
		return nil, err
	}
	ks := &customKeyStore{
		ID:          "cks-" + hex.EncodeToString(raw)[:17],
		Name:        in.CustomKeyStoreName,
		Account:     c.Account,
		ClusterID:   *in.CloudHsmClusterId,
		TrustAnchor: *in.TrustAnchorCertificate,
		State:       StoreDisconnected,
		Created:     s.now().UTC(),
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err = s.store.Update(ctx, func(tx keystore.Tx) error {
		if err := storeClash(tx, c.Account, ks.ID, &ks.Name, &ks.ClusterID); err != nil {
			return err
		}
		return putJSON(tx, bucketKeyStores, storeKey(ks.Account, ks.ID), ks)
	})
	if err != nil {
		return nil, internal(err)
	}
	return &CreateCustomKeyStoreOutput{CustomKeyStoreId: ks.ID}, nil
}

// DescribeCustomKeyStoresInput is the DescribeCustomKeyStores request.
type DescribeCustomKeyStoresInput struct {
	CustomKeyStoreId   string `json:"CustomKeyStoreId"`
	CustomKeyStoreName string `json:"CustomKeyStoreName"`
	Limit              *int   `json:"Limit"`
	Marker             string `json:"Marker"`
}

// CustomKeyStoreEntry describes one custom key store.
type CustomKeyStoreEntry struct {
	CustomKeyStoreId       string     `json:"CustomKeyStoreId"`
	CustomKeyStoreName     string     `json:"CustomKeyStoreName"`
	CustomKeyStoreType     string     `json:"CustomKeyStoreType"`
	CloudHsmClusterId      string     `json:"CloudHsmClusterId"`
	TrustAnchorCertificate string     `json:"TrustAnchorCertificate"`
	ConnectionState        string     `json:"ConnectionState"`
	ConnectionErrorCode    string     `json:"ConnectionErrorCode,omitempty"`
	CreationDate           *Timestamp `json:"CreationDate"`
}

// DescribeCustomKeyStoresOutput is the DescribeCustomKeyStores response.
type DescribeCustomKeyStoresOutput struct {
	CustomKeyStores []CustomKeyStoreEntry `json:"CustomKeyStores"`
	NextMarker      string                `json:"NextMarker,omitempty"`
	Truncated       bool                  `json:"Truncated"`
}

// DescribeCustomKeyStores describes one store, by ID or name, or pages
// through all of the account's in ID order.
func (s *Service) DescribeCustomKeyStores(ctx context.Context, c *Caller, in *DescribeCustomKeyStoresInput) (*DescribeCustomKeyStoresOutput, error) {
	var v validator
	if in.CustomKeyStoreId != "" {
		v.length("customKeyStoreId", in.CustomKeyStoreId, 1, 64)
	}
	if in.CustomKeyStoreName != "" {
		v.length("customKeyStoreName", in.CustomKeyStoreName, 1, 256)
	}
	v.limit(in.Limit)
	v.marker(in.Marker)
	if err := v.err(); err != nil {
		return nil, err
	}
	if in.CustomKeyStoreId != "" && in.CustomKeyStoreName != "" {
		return nil, newError(ErrValidation, "Specify CustomKeyStoreId or CustomKeyStoreName, not both.")
	}
	after, err := decodeMarker("custom-key-stores", in.Marker)
	if err != nil {
		return nil, err
	}
	if err := s.authorizeIdentity(ctx, c, opDescribeCustomKeyStores.Action, "*"); err != nil {
		return nil, err
	}
	limit := pageLimit(in.Limit, 100, 1000)
	out := &DescribeCustomKeyStoresOutput{CustomKeyStores: []CustomKeyStoreEntry{}}
	err = s.store.View(ctx, func(tx keystore.Tx) error {
		return scanKeyStores(tx, c.Account, func(ks *customKeyStore) bool {
			switch {
			case in.CustomKeyStoreId != "" && ks.ID != in.CustomKeyStoreId,
				in.CustomKeyStoreName != "" && ks.Name != in.CustomKeyStoreName,
				ks.ID <= after:
				return true
			}
			if len(out.CustomKeyStores) == limit {
				out.Truncated = true
				return false
			}
			out.CustomKeyStores = append(out.CustomKeyStores, ks.entry())
			return true
		})
	})
	if err != nil {
		return nil, internal(err)
	}
	if len(out.CustomKeyStores) == 0 && (in.CustomKeyStoreId != "" || in.CustomKeyStoreName != "") {
		name := in.CustomKeyStoreId
		if name == "" {
			name = truncate(in.CustomKeyStoreName)
		}
		return nil, keyStoreNotFound(name)
	}
	if out.Truncated {
		out.NextMarker = encodeMarker("custom-key-stores", out.CustomKeyStores[len(out.CustomKeyStores)-1].CustomKeyStoreId)
	}
	return out, nil
}

func (ks *customKeyStore) entry() CustomKeyStoreEntry {
	return CustomKeyStoreEntry{
		CustomKeyStoreId:       ks.ID,
		CustomKeyStoreName:     ks.Name,
		CustomKeyStoreType:     StoreTypeCloudHSM,
		CloudHsmClusterId:      ks.ClusterID,
		TrustAnchorCertificate: ks.TrustAnchor,
		ConnectionState:        ks.State,
		ConnectionErrorCode:    ks.ErrorCode,
		CreationDate:           ts(ks.Created),
	}
}

// CustomKeyStoreIDInput is the request of operations that take only a
// CustomKeyStoreId.
type CustomKeyStoreIDInput struct {
	CustomKeyStoreId string `json:"CustomKeyStoreId"`
}

func (in *CustomKeyStoreIDInput) check() error {
	var v validator
	v.length("customKeyStoreId", in.CustomKeyStoreId, 1, 64)
	return v.err()
}

// storeFor checks in, authorizes action (identity policies only) and
// returns the caller's store that in names.
func (s *Service) storeFor(ctx context.Context, c *Caller, action string, in *CustomKeyStoreIDInput) (*customKeyStore, error) {
	if err := in.check(); err != nil {
		return nil, err
	}
	if err := s.authorizeIdentity(ctx, c, action, "*"); err != nil {
		return nil, err
	}
	return s.keyStore(ctx, c.Account, in.CustomKeyStoreId)
}

// ConnectCustomKeyStore checks the HSM and, when it answers, connects the
// store and makes its keys available again. A store that cannot connect is
// left FAILED with AWS's ConnectionErrorCode; the call itself succeeds, as
// AWS's does, and DescribeCustomKeyStores tells the outcome.
func (s *Service) ConnectCustomKeyStore(ctx context.Context, c *Caller, in *CustomKeyStoreIDInput) (*Empty, error) {
	ks, err := s.storeFor(ctx, c, opConnectCustomKeyStore.Action, in)
	if err != nil {
		return nil, err
	}
	if ks.State == StoreFailed {
		return nil, newError(ErrCustomKeyStoreInvalidState, "Custom key store %s is FAILED: disconnect it before connecting again.", ks.ID)
	}
	if ks.State == StoreConnected {
		return &Empty{}, nil
	}
	state, code := StoreConnected, ""
	if s.ks == nil {
		state, code = StoreFailed, "CLUSTER_NOT_FOUND"
	} else if err := s.ks.Ping(ctx); err != nil {
		state, code = StoreFailed, connectionErrorCode(err)
	}
	return &Empty{}, s.setStoreState(ctx, c.Account, ks.ID, state, code)
}

// connectionErrorCode maps an HSM failure to AWS's ConnectionErrorCode.
func connectionErrorCode(err error) string {
	switch {
	case errors.Is(err, hsm.ErrLogin):
		return "INVALID_CREDENTIALS"
	case errors.Is(err, hsm.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return "NETWORK_ERRORS"
	default:
		return "INTERNAL_ERROR"
	}
}

// DisconnectCustomKeyStore disconnects a store; its keys become Unavailable.
func (s *Service) DisconnectCustomKeyStore(ctx context.Context, c *Caller, in *CustomKeyStoreIDInput) (*Empty, error) {
	ks, err := s.storeFor(ctx, c, opDisconnectCustomKeyStore.Action, in)
	if err != nil {
		return nil, err
	}
	if ks.State == StoreDisconnected {
		return nil, newError(ErrCustomKeyStoreInvalidState, "Custom key store %s is already DISCONNECTED.", ks.ID)
	}
	return &Empty{}, s.setStoreState(ctx, c.Account, ks.ID, StoreDisconnected, "")
}

// setStoreState records a store's connection state and moves its keys in
// the same transaction: to Unavailable when it is not connected, back to
// the state they would have when it is.
func (s *Service) setStoreState(ctx context.Context, account, id, state, code string) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var changed []*keyRecord
	err := s.store.Update(ctx, func(tx keystore.Tx) error {
		ks, err := keyStoreTx(tx, account, id)
		if err != nil {
			return err
		}
		ks.State, ks.ErrorCode = state, code
		if err := putJSON(tx, bucketKeyStores, storeKey(account, id), ks); err != nil {
			return err
		}
		ids, err := s.storeKeys(tx, id, -1)
		if err != nil {
			return err
		}
		for _, kid := range ids {
			r, err := getKeyTx(tx, kid)
			if err != nil || r == nil {
				return err
			}
			next := r.clone()
			if !next.setStoreConnected(state == StoreConnected) {
				continue
			}
			next.prepare()
			if err := putKeyTx(tx, next); err != nil {
				return err
			}
			changed = append(changed, next)
		}
		return nil
	})
	if err != nil {
		return internal(err)
	}
	for _, r := range changed {
		s.cache.publishKey(r.ID, r)
	}
	return nil
}

// storeKeys lists the IDs of the keys in custom key store id, at most max
// of them (max < 0: all), from the keys-by-store index (keyindex.go) once
// it is built.
func (s *Service) storeKeys(tx keystore.Tx, id string, max int) ([]string, error) {
	var ids []string
	if built, err := s.keyIndexesBuilt(tx); err != nil {
		return nil, err
	} else if built {
		prefix := storeIndexName(id, "")
		err := tx.Scan(bucketKeysByStore, prefix, "", func(name string, _ []byte) bool {
			ids = append(ids, strings.TrimPrefix(name, prefix))
			return max < 0 || len(ids) < max
		})
		return ids, err
	}
	err := tx.Scan(bucketKeys, "", "", func(kid string, raw []byte) bool {
		var probe struct {
			Store string `json:"customKeyStoreId"`
		}
		if json.Unmarshal(raw, &probe) == nil && probe.Store == id {
			ids = append(ids, kid)
		}
		return max < 0 || len(ids) < max
	})
	return ids, err
}

// setStoreConnected moves a custom-key-store key to the state its store's
// connection implies and reports whether it changed. Keys pending deletion
// stay so whatever the store does.
func (r *keyRecord) setStoreConnected(connected bool) bool {
	switch {
	case connected && r.State == StateUnavailable:
		r.State, r.AvailableState = r.AvailableState, ""
		if r.State == "" {
			r.State = StateDisabled
		}
		return true
	case !connected && (r.State == StateEnabled || r.State == StateDisabled):
		r.State, r.AvailableState = StateUnavailable, r.State
		return true
	}
	return false
}

// UpdateCustomKeyStoreInput is the UpdateCustomKeyStore request.
type UpdateCustomKeyStoreInput struct {
	CustomKeyStoreId      string          `json:"CustomKeyStoreId"`
	NewCustomKeyStoreName *string         `json:"NewCustomKeyStoreName"`
	KeyStorePassword      *string         `json:"KeyStorePassword"`
	CloudHsmClusterId     *string         `json:"CloudHsmClusterId"`
	XksProxyUriEndpoint   string          `json:"XksProxyUriEndpoint"`
	XksProxyConfiguration json.RawMessage `json:"XksProxyAuthenticationCredential"`
}

// UpdateCustomKeyStore renames a store in any state; a new cluster ID or
// password needs it DISCONNECTED, as AWS does.
func (s *Service) UpdateCustomKeyStore(ctx context.Context, c *Caller, in *UpdateCustomKeyStoreInput) (*Empty, error) {
	var v validator
	v.length("customKeyStoreId", in.CustomKeyStoreId, 1, 64)
	if in.NewCustomKeyStoreName != nil {
		v.length("newCustomKeyStoreName", *in.NewCustomKeyStoreName, 1, 256)
	}
	checkStoreFields(&v, in.CloudHsmClusterId, nil, in.KeyStorePassword)
	if err := v.err(); err != nil {
		return nil, err
	}
	if in.XksProxyUriEndpoint != "" || len(in.XksProxyConfiguration) > 0 {
		return nil, newError(ErrUnsupportedOperation, "External key stores are not supported by this server.")
	}
	if err := s.authorizeIdentity(ctx, c, opUpdateCustomKeyStore.Action, "*"); err != nil {
		return nil, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err := s.store.Update(ctx, func(tx keystore.Tx) error {
		ks, err := keyStoreTx(tx, c.Account, in.CustomKeyStoreId)
		if err != nil {
			return err
		}
		if (in.CloudHsmClusterId != nil || in.KeyStorePassword != nil) && ks.State != StoreDisconnected {
			return newError(ErrCustomKeyStoreInvalidState, "Custom key store %s is %s; disconnect it to change its cluster or password.", ks.ID, ks.State)
		}
		if err := storeClash(tx, c.Account, ks.ID, in.NewCustomKeyStoreName, in.CloudHsmClusterId); err != nil {
			return err
		}
		if in.NewCustomKeyStoreName != nil {
			ks.Name = *in.NewCustomKeyStoreName
		}
		if in.CloudHsmClusterId != nil {
			ks.ClusterID = *in.CloudHsmClusterId
		}
		return putJSON(tx, bucketKeyStores, storeKey(ks.Account, ks.ID), ks)
	})
	if err != nil {
		return nil, internal(err)
	}
	return &Empty{}, nil
}

// DeleteCustomKeyStore deletes a DISCONNECTED store that holds no keys,
// including keys pending deletion.
func (s *Service) DeleteCustomKeyStore(ctx context.Context, c *Caller, in *CustomKeyStoreIDInput) (*Empty, error) {
	if err := in.check(); err != nil {
		return nil, err
	}
	if err := s.authorizeIdentity(ctx, c, opDeleteCustomKeyStore.Action, "*"); err != nil {
		return nil, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err := s.store.Update(ctx, func(tx keystore.Tx) error {
		ks, err := keyStoreTx(tx, c.Account, in.CustomKeyStoreId)
		if err != nil {
			return err
		}
		if ks.State != StoreDisconnected {
			return newError(ErrCustomKeyStoreInvalidState, "Custom key store %s is %s; disconnect it before deleting it.", ks.ID, ks.State)
		}
		ids, err := s.storeKeys(tx, ks.ID, 1)
		if err != nil {
			return err
		}
		if len(ids) > 0 {
			return newError(ErrCustomKeyStoreHasCMKs, "Custom key store %s still holds KMS keys: delete them and wait for their deletion first.", ks.ID)
		}
		return tx.Delete(bucketKeyStores, storeKey(ks.Account, ks.ID))
	})
	if err != nil {
		return nil, internal(err)
	}
	return &Empty{}, nil
}

// createStoreKey makes the HSM key of a new custom-key-store key r in store
// id, filling in r's store fields and its one version.
func (s *Service) createStoreKey(ctx context.Context, c *Caller, r *keyRecord, id string, now time.Time) error {
	ks, err := s.connectedKeyStore(ctx, c.Account, id)
	if err != nil {
		return err
	}
	label := labelCustomKeyStoreKey + r.ID
	handle, err := s.ks.GenerateKey(ctx, label)
	if err != nil {
		return storeFailure(err, ks.ID)
	}
	mid, err := s.randomBytes(32)
	if err != nil {
		s.destroyStoreKey(context.WithoutCancel(ctx), handle)
		return err
	}
	r.Origin, r.CustomKeyStoreID, r.ClusterID = OriginCloudHSM, ks.ID, ks.ClusterID
	r.Versions = []keyVersion{{MaterialID: hex.EncodeToString(mid), HSMKey: handle, Created: now}}
	return nil
}

// destroyStoreKey deletes a custom-key-store key's HSM object. A failure
// leaves an orphan object in the token, never a usable key: its KMS record
// is gone. It is logged by label, which is no secret.
func (s *Service) destroyStoreKey(ctx context.Context, handle string) {
	if s.ks == nil || handle == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.ks.DestroyKey(ctx, handle); err != nil && !errors.Is(err, hsm.ErrKeyNotFound) {
		slog.Warn("kms: cannot destroy the HSM key of a deleted custom-key-store key", "label", handle, "error", err)
	}
}

// storeFailure is hsmFailure for a call on a custom-key-store key, where a
// ciphertext the HSM does not authenticate is the caller's.
func storeFailure(err error, what string) error {
	if errors.Is(err, hsm.ErrUnwrap) {
		return invalidCiphertext
	}
	return hsmFailure(err, what)
}
