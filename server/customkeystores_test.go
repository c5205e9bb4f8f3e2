package server_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/coffer-kms/coffer/hsm"
)

// trustAnchor is a self-signed PEM certificate, standing in for a cluster's.
func trustAnchor(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cluster trust anchor"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

const (
	testCluster  = "cluster-234567abcdef"
	testPassword = "kmsuser-secret-7Qx"
)

func (e *testEnv) describeStore(t *testing.T, id string) types.CustomKeyStoresListEntry {
	t.Helper()
	out := must[*awskms.DescribeCustomKeyStoresOutput](t)(e.client.DescribeCustomKeyStores(context.Background(), &awskms.DescribeCustomKeyStoresInput{CustomKeyStoreId: aws.String(id)}))
	if len(out.CustomKeyStores) != 1 {
		t.Fatalf("describe %s: %d stores", id, len(out.CustomKeyStores))
	}
	return out.CustomKeyStores[0]
}

func (e *testEnv) keyState(t *testing.T, id string) types.KeyState {
	t.Helper()
	out := must[*awskms.DescribeKeyOutput](t)(e.client.DescribeKey(context.Background(), &awskms.DescribeKeyInput{KeyId: aws.String(id)}))
	return out.KeyMetadata.KeyState
}

// TestCustomKeyStoreWithoutHSM: the software root has nowhere to put one.
func TestCustomKeyStoreWithoutHSM(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	e := newEnv(t)
	if hsm.KeyStoreOf(e.root) != nil {
		t.Skip("the default root of this run is an HSM")
	}
	_, err := e.client.CreateCustomKeyStore(context.Background(), &awskms.CreateCustomKeyStoreInput{
		CustomKeyStoreName: aws.String("s"), CloudHsmClusterId: aws.String(testCluster),
		TrustAnchorCertificate: aws.String(trustAnchor(t)), KeyStorePassword: aws.String(testPassword)})
	wantCode(t, err, "CloudHsmClusterNotFoundException")
}

// TestCustomKeyStoreLifecycle drives a custom key store and a key in it
// through the AWS API on a SoftHSM2 root: creation, connection, crypto in
// the HSM, the Unavailable state while disconnected, rotation refused,
// deletion of the key (and its HSM object) and of the store.
func TestCustomKeyStoreLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	e := newEnvOn(t, "pkcs11")
	ctx := context.Background()
	c := e.client
	anchor := trustAnchor(t)
	create := func(name, cluster, anchor, password string) (*awskms.CreateCustomKeyStoreOutput, error) {
		return c.CreateCustomKeyStore(ctx, &awskms.CreateCustomKeyStoreInput{
			CustomKeyStoreName: aws.String(name), CloudHsmClusterId: aws.String(cluster),
			TrustAnchorCertificate: aws.String(anchor), KeyStorePassword: aws.String(password)})
	}

	// Bad input, and nothing created by it.
	_, err := create("s", testCluster, "not a certificate", testPassword)
	wantCode(t, err, "IncorrectTrustAnchorException")
	_, err = create("s", testCluster, anchor, "short")
	wantCode(t, err, "ValidationException")
	if strings.Contains(apiMessage(err), "short") {
		t.Fatalf("the password is echoed: %s", apiMessage(err))
	}
	_, err = c.CreateCustomKeyStore(ctx, &awskms.CreateCustomKeyStoreInput{CustomKeyStoreName: aws.String("x"), CustomKeyStoreType: types.CustomKeyStoreTypeExternalKeyStore})
	wantCode(t, err, "UnsupportedOperationException")
	list := must[*awskms.DescribeCustomKeyStoresOutput](t)(c.DescribeCustomKeyStores(ctx, &awskms.DescribeCustomKeyStoresInput{}))
	if len(list.CustomKeyStores) != 0 {
		t.Fatalf("refused requests created %d stores", len(list.CustomKeyStores))
	}

	// Creation: DISCONNECTED, names and clusters unique.
	id := *must[*awskms.CreateCustomKeyStoreOutput](t)(create("pipeline-hsm", testCluster, anchor, testPassword)).CustomKeyStoreId
	if !strings.HasPrefix(id, "cks-") || len(id) != 21 {
		t.Fatalf("store id %q", id)
	}
	st := e.describeStore(t, id)
	if st.ConnectionState != types.ConnectionStateTypeDisconnected || *st.CustomKeyStoreName != "pipeline-hsm" ||
		*st.CloudHsmClusterId != testCluster || *st.TrustAnchorCertificate != anchor || st.CustomKeyStoreType != types.CustomKeyStoreTypeAwsCloudhsm {
		t.Fatalf("new store: %+v", st)
	}
	_, err = create("pipeline-hsm", "cluster-234567abcdeg", anchor, testPassword)
	wantCode(t, err, "CustomKeyStoreNameInUseException")
	_, err = create("other", testCluster, anchor, testPassword)
	wantCode(t, err, "CloudHsmClusterInUseException")
	byName := must[*awskms.DescribeCustomKeyStoresOutput](t)(c.DescribeCustomKeyStores(ctx, &awskms.DescribeCustomKeyStoresInput{CustomKeyStoreName: aws.String("pipeline-hsm")}))
	if len(byName.CustomKeyStores) != 1 || *byName.CustomKeyStores[0].CustomKeyStoreId != id {
		t.Fatalf("by name: %+v", byName.CustomKeyStores)
	}
	_, err = c.DescribeCustomKeyStores(ctx, &awskms.DescribeCustomKeyStoresInput{CustomKeyStoreId: aws.String("cks-00000000000000000")})
	wantCode(t, err, "CustomKeyStoreNotFoundException")

	// A key needs the store connected and origin AWS_CLOUDHSM.
	newKey := func(origin types.OriginType) (*awskms.CreateKeyOutput, error) {
		return c.CreateKey(ctx, &awskms.CreateKeyInput{CustomKeyStoreId: aws.String(id), Origin: origin})
	}
	_, err = newKey(types.OriginTypeAwsCloudhsm)
	wantCode(t, err, "CustomKeyStoreInvalidStateException")
	must[*awskms.ConnectCustomKeyStoreOutput](t)(c.ConnectCustomKeyStore(ctx, &awskms.ConnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)}))
	if st := e.describeStore(t, id); st.ConnectionState != types.ConnectionStateTypeConnected {
		t.Fatalf("after connect: %s %s", st.ConnectionState, st.ConnectionErrorCode)
	}
	_, err = newKey("")
	wantCode(t, err, "ValidationException")
	_, err = c.CreateKey(ctx, &awskms.CreateKeyInput{Origin: types.OriginTypeAwsCloudhsm})
	wantCode(t, err, "ValidationException")
	md := must[*awskms.CreateKeyOutput](t)(newKey(types.OriginTypeAwsCloudhsm)).KeyMetadata
	if md.Origin != types.OriginTypeAwsCloudhsm || aws.ToString(md.CustomKeyStoreId) != id || aws.ToString(md.CloudHsmClusterId) != testCluster || md.KeyState != types.KeyStateEnabled {
		t.Fatalf("key metadata: %+v", md)
	}
	key := *md.KeyId

	// Crypto runs in the HSM; blobs are version 2 and bind the context.
	ec := map[string]string{"tenant": "acme"}
	enc := must[*awskms.EncryptOutput](t)(c.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("in the hsm"), EncryptionContext: ec}))
	if enc.CiphertextBlob[0] != 2 {
		t.Fatalf("blob version %d, want 2", enc.CiphertextBlob[0])
	}
	dec := must[*awskms.DecryptOutput](t)(c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec}))
	if string(dec.Plaintext) != "in the hsm" || !strings.HasSuffix(*dec.KeyId, key) {
		t.Fatalf("decrypt: %q under %s", dec.Plaintext, *dec.KeyId)
	}
	_, err = c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"tenant": "other"}})
	wantCode(t, err, "InvalidCiphertextException")
	for _, i := range []int{1, 20, 21, len(enc.CiphertextBlob) - 1} {
		bad := bytes.Clone(enc.CiphertextBlob)
		bad[i] ^= 1
		_, err = c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: bad, EncryptionContext: ec})
		if i == 1 { // in the key ID: a well-formed blob naming a key that does not exist
			wantCode(t, err, "AccessDeniedException")
			continue
		}
		if code := apiCode(err); code != "InvalidCiphertextException" && code != "NotFoundException" {
			t.Fatalf("byte %d flipped: %s", i, code)
		}
	}
	gdk := must[*awskms.GenerateDataKeyOutput](t)(c.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{KeyId: aws.String(key), KeySpec: types.DataKeySpecAes256}))
	back := must[*awskms.DecryptOutput](t)(c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: gdk.CiphertextBlob}))
	if !bytes.Equal(back.Plaintext, gdk.Plaintext) || len(gdk.Plaintext) != 32 {
		t.Fatal("data key does not round-trip")
	}
	plainKey := e.createKey("software")
	re := must[*awskms.ReEncryptOutput](t)(c.ReEncrypt(ctx, &awskms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: ec, DestinationKeyId: aws.String(plainKey)}))
	if re.CiphertextBlob[0] != 1 {
		t.Fatal("re-encryption to a software-rooted key is not a version-1 blob")
	}
	rnd := must[*awskms.GenerateRandomOutput](t)(c.GenerateRandom(ctx, &awskms.GenerateRandomInput{NumberOfBytes: aws.Int32(48), CustomKeyStoreId: aws.String(id)}))
	if len(rnd.Plaintext) != 48 {
		t.Fatalf("random: %d bytes", len(rnd.Plaintext))
	}

	// The key's material is the HSM's: no such token object is extractable,
	// and the HSM answers for it by label.
	ks := hsm.KeyStoreOf(e.root)
	if _, err := ks.Encrypt(ctx, "coffer-cks/"+key, []byte("x"), nil); err != nil {
		t.Fatalf("the HSM has no object for the key: %v", err)
	}

	// Rotation is refused, as AWS does for CloudHSM keys.
	_, err = c.EnableKeyRotation(ctx, &awskms.EnableKeyRotationInput{KeyId: aws.String(key)})
	wantCode(t, err, "UnsupportedOperationException")
	_, err = c.RotateKeyOnDemand(ctx, &awskms.RotateKeyOnDemandInput{KeyId: aws.String(key)})
	wantCode(t, err, "UnsupportedOperationException")

	// Disconnected: keys Unavailable; Disable is recorded and applied on reconnection.
	_, err = c.UpdateCustomKeyStore(ctx, &awskms.UpdateCustomKeyStoreInput{CustomKeyStoreId: aws.String(id), CloudHsmClusterId: aws.String("cluster-234567abcdeh")})
	wantCode(t, err, "CustomKeyStoreInvalidStateException")
	must[*awskms.UpdateCustomKeyStoreOutput](t)(c.UpdateCustomKeyStore(ctx, &awskms.UpdateCustomKeyStoreInput{CustomKeyStoreId: aws.String(id), NewCustomKeyStoreName: aws.String("renamed")}))
	must[*awskms.DisconnectCustomKeyStoreOutput](t)(c.DisconnectCustomKeyStore(ctx, &awskms.DisconnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)}))
	_, err = c.DisconnectCustomKeyStore(ctx, &awskms.DisconnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	wantCode(t, err, "CustomKeyStoreInvalidStateException")
	if s := e.keyState(t, key); s != types.KeyStateUnavailable {
		t.Fatalf("key in a disconnected store is %s", s)
	}
	_, err = c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	wantCode(t, err, "KMSInvalidStateException")
	_, err = c.GenerateRandom(ctx, &awskms.GenerateRandomInput{NumberOfBytes: aws.Int32(8), CustomKeyStoreId: aws.String(id)})
	wantCode(t, err, "CustomKeyStoreInvalidStateException")
	must[*awskms.DisableKeyOutput](t)(c.DisableKey(ctx, &awskms.DisableKeyInput{KeyId: aws.String(key)}))
	must[*awskms.UpdateCustomKeyStoreOutput](t)(c.UpdateCustomKeyStore(ctx, &awskms.UpdateCustomKeyStoreInput{CustomKeyStoreId: aws.String(id), KeyStorePassword: aws.String("another-password")}))
	e.restart() // all of it is durable
	c = e.client
	if st := e.describeStore(t, id); st.ConnectionState != types.ConnectionStateTypeDisconnected || *st.CustomKeyStoreName != "renamed" {
		t.Fatalf("after restart: %+v", st)
	}
	must[*awskms.ConnectCustomKeyStoreOutput](t)(c.ConnectCustomKeyStore(ctx, &awskms.ConnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)}))
	if s := e.keyState(t, key); s != types.KeyStateDisabled {
		t.Fatalf("reconnected key is %s, want the Disabled recorded while away", s)
	}
	must[*awskms.EnableKeyOutput](t)(c.EnableKey(ctx, &awskms.EnableKeyInput{KeyId: aws.String(key)}))
	dec = must[*awskms.DecryptOutput](t)(c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec}))
	if string(dec.Plaintext) != "in the hsm" {
		t.Fatal("old blob does not decrypt after restart and reconnection")
	}

	// Deleting: the store must be disconnected and empty; the key's HSM
	// object goes with the key.
	_, err = c.DeleteCustomKeyStore(ctx, &awskms.DeleteCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	wantCode(t, err, "CustomKeyStoreInvalidStateException")
	must[*awskms.DisconnectCustomKeyStoreOutput](t)(c.DisconnectCustomKeyStore(ctx, &awskms.DisconnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)}))
	_, err = c.DeleteCustomKeyStore(ctx, &awskms.DeleteCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	wantCode(t, err, "CustomKeyStoreHasCMKsException")
	must[*awskms.ScheduleKeyDeletionOutput](t)(c.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: aws.String(key), PendingWindowInDays: aws.Int32(7)}))
	must[*awskms.CancelKeyDeletionOutput](t)(c.CancelKeyDeletion(ctx, &awskms.CancelKeyDeletionInput{KeyId: aws.String(key)}))
	if s := e.keyState(t, key); s != types.KeyStateUnavailable {
		t.Fatalf("cancelled deletion in a disconnected store: %s", s)
	}
	must[*awskms.ScheduleKeyDeletionOutput](t)(c.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: aws.String(key), PendingWindowInDays: aws.Int32(7)}))
	e.clock.Advance(8 * 24 * time.Hour)
	if _, deleted, err := e.svc.RunMaintenance(ctx); deleted != 1 || err != nil {
		t.Fatalf("maintenance deleted %d keys: %v", deleted, err)
	}
	ks = hsm.KeyStoreOf(e.root)
	if _, err := ks.Encrypt(ctx, "coffer-cks/"+key, []byte("x"), nil); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatalf("the deleted key's HSM object still answers: %v", err)
	}
	must[*awskms.DeleteCustomKeyStoreOutput](t)(c.DeleteCustomKeyStore(ctx, &awskms.DeleteCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)}))
	_, err = c.DescribeCustomKeyStores(ctx, &awskms.DescribeCustomKeyStoresInput{CustomKeyStoreId: aws.String(id)})
	wantCode(t, err, "CustomKeyStoreNotFoundException")

	// The passwords were audited as calls, never as values.
	all := e.trailAndLogs()
	if !bytes.Contains(all, []byte(`"CreateCustomKeyStore"`)) {
		t.Fatal("CreateCustomKeyStore is not in the audit trail")
	}
	for _, secret := range []string{testPassword, "another-password", "in the hsm"} {
		if bytes.Contains(all, []byte(secret)) {
			t.Fatalf("%q appears in the audit trail or the logs", secret)
		}
	}
}

// TestCustomKeyStoreAuthorization: the store operations are governed by
// identity policies only, and another account cannot see a store.
func TestCustomKeyStoreAuthorization(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	e := newEnvOn(t, "pkcs11")
	ctx := context.Background()
	user, _ := e.principal(t, testAccount, "reader", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:DescribeCustomKeyStores","Resource":"*"}]}`)
	other, _ := e.principal(t, otherAccount, "stranger", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}`)
	in := &awskms.CreateCustomKeyStoreInput{CustomKeyStoreName: aws.String("s"), CloudHsmClusterId: aws.String(testCluster),
		TrustAnchorCertificate: aws.String(trustAnchor(t)), KeyStorePassword: aws.String(testPassword)}
	_, err := user.CreateCustomKeyStore(ctx, in)
	wantCode(t, err, "AccessDeniedException")
	id := *must[*awskms.CreateCustomKeyStoreOutput](t)(e.client.CreateCustomKeyStore(ctx, in)).CustomKeyStoreId
	if got := must[*awskms.DescribeCustomKeyStoresOutput](t)(user.DescribeCustomKeyStores(ctx, &awskms.DescribeCustomKeyStoresInput{})); len(got.CustomKeyStores) != 1 {
		t.Fatalf("reader sees %d stores", len(got.CustomKeyStores))
	}
	for name, err := range map[string]error{
		"connect": func() error {
			_, err := user.ConnectCustomKeyStore(ctx, &awskms.ConnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
			return err
		}(),
		"delete": func() error {
			_, err := user.DeleteCustomKeyStore(ctx, &awskms.DeleteCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
			return err
		}(),
		"update": func() error {
			_, err := user.UpdateCustomKeyStore(ctx, &awskms.UpdateCustomKeyStoreInput{CustomKeyStoreId: aws.String(id), NewCustomKeyStoreName: aws.String("x")})
			return err
		}(),
		"disconnect": func() error {
			_, err := user.DisconnectCustomKeyStore(ctx, &awskms.DisconnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
			return err
		}(),
	} {
		if apiCode(err) != "AccessDeniedException" {
			t.Errorf("%s by a reader: %v", name, err)
		}
	}
	if st := e.describeStore(t, id); st.ConnectionState != types.ConnectionStateTypeDisconnected || *st.CustomKeyStoreName != "s" {
		t.Fatalf("denied calls changed the store: %+v", st)
	}
	_, err = other.ConnectCustomKeyStore(ctx, &awskms.ConnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	wantCode(t, err, "CustomKeyStoreNotFoundException")
	if got := must[*awskms.DescribeCustomKeyStoresOutput](t)(other.DescribeCustomKeyStores(ctx, &awskms.DescribeCustomKeyStoresInput{})); len(got.CustomKeyStores) != 0 {
		t.Fatalf("another account sees %d stores", len(got.CustomKeyStores))
	}
}
