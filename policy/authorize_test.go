package policy

import (
	"errors"
	"testing"
)

func TestAuthorize(t *testing.T) {
	aliceUse := identityPolicy(t, `{"Statement":{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}}`)
	denyDecrypt := identityPolicy(t, `{"Statement":{"Effect":"Deny","Action":"kms:Decrypt","Resource":"*"}}`)
	otherKeyOnly := identityPolicy(t, `{"Statement":{"Effect":"Allow","Action":"kms:*","Resource":"arn:aws:kms:*:*:key/other"}}`)
	thisKeyOnly := identityPolicy(t, `{"Statement":{"Effect":"Allow","Action":"kms:*","Resource":"arn:aws:kms:us-east-1:111122223333:key/*"}}`)
	everything := identityPolicy(t, allowAll)
	direct := `{"Statement":[
		{"Sid":"root","Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"},
		{"Sid":"bob","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"Action":"kms:Encrypt","Resource":"*"},
		{"Sid":"role","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/KeyAdmin"},"Action":"kms:Create*","Resource":"*"},
		{"Sid":"mallory","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:user/mallory"},"Action":["kms:Decrypt","kms:Encrypt"],"Resource":"*"},
		{"Sid":"nodisable","Effect":"Deny","Principal":"*","Action":"kms:Disable*","Resource":"*"}]}`
	crossAccountRoot := `{"Statement":[
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
		{"Effect":"Allow","Principal":{"AWS":["444455556666"]},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}]}`
	everyone := `{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:Encrypt","Resource":"*"}}`
	noKeyPolicyStatement := `{"Statement":[]}`
	for _, c := range []struct {
		name      string
		keyPolicy string
		principal string
		identity  []*Policy
		grant     bool
		action    string
		want      Decision
	}{
		// the default key policy delegates to IAM
		{"root via default policy", defaultPolicy, root, nil, false, "kms:ScheduleKeyDeletion", Allow},
		{"user with identity allow", defaultPolicy, alice, []*Policy{aliceUse}, false, "kms:Encrypt", Allow},
		{"user, action not in identity policy", defaultPolicy, alice, []*Policy{aliceUse}, false, "kms:ScheduleKeyDeletion", NotApplicable},
		{"user without identity policy", defaultPolicy, alice, nil, false, "kms:Encrypt", NotApplicable},
		{"identity deny beats identity allow", defaultPolicy, alice, []*Policy{aliceUse, denyDecrypt}, false, "kms:Decrypt", Deny},
		{"identity policy for another key", defaultPolicy, alice, []*Policy{otherKeyOnly}, false, "kms:Encrypt", NotApplicable},
		{"identity policy with key ARN pattern", defaultPolicy, alice, []*Policy{thisKeyOnly}, false, "kms:Encrypt", Allow},
		{"role session via IAM", defaultPolicy, session, []*Policy{everything}, false, "kms:Encrypt", Allow},
		// grants
		{"grant alone", defaultPolicy, alice, nil, true, "kms:Decrypt", Allow},
		{"grant does not beat identity deny", defaultPolicy, alice, []*Policy{denyDecrypt}, true, "kms:Decrypt", Deny},
		{"grant does not beat key policy deny", direct, alice, nil, true, "kms:DisableKey", Deny},
		{"grant for a cross-account caller", noKeyPolicyStatement, mallory, nil, true, "kms:Decrypt", Allow},
		// key policy naming principals directly
		{"user named directly, no IAM needed", direct, bob, nil, false, "kms:Encrypt", Allow},
		{"user named directly, other action, no IAM", direct, bob, nil, false, "kms:Decrypt", NotApplicable},
		{"user named directly, other action, IAM allows", direct, bob, []*Policy{aliceUse}, false, "kms:Decrypt", Allow},
		{"role named directly", direct, admin, nil, false, "kms:CreateGrant", Allow},
		{"session of a role named directly", direct, session, nil, false, "kms:CreateGrant", Allow},
		{"Principal *", everyone, alice, nil, false, "kms:Encrypt", Allow},
		{"Principal * is still per action", everyone, alice, nil, false, "kms:Decrypt", NotApplicable},
		{"action names are case-insensitive", direct, bob, nil, false, "KMS:ENCRYPT", Allow},
		// deny precedence
		{"key policy deny beats root", direct, root, nil, false, "kms:DisableKey", Deny},
		{"key policy deny beats identity allow", direct, alice, []*Policy{everything}, false, "kms:DisableKeyRotation", Deny},
		{"identity deny beats key policy naming the user", direct, bob, []*Policy{identityPolicy(t, `{"Statement":{"Effect":"Deny","Action":"kms:Encrypt","Resource":"*"}}`)}, false, "kms:Encrypt", Deny},
		{"identity deny on another key does not apply", direct, bob, []*Policy{identityPolicy(t, `{"Statement":{"Effect":"Deny","Action":"*","Resource":"arn:aws:kms:*:*:key/other"}}`)}, false, "kms:Encrypt", Allow},
		// cross-account
		{"cross-account named, without own IAM", direct, mallory, nil, false, "kms:Decrypt", NotApplicable},
		{"cross-account named, with own IAM", direct, mallory, []*Policy{aliceUse}, false, "kms:Decrypt", Allow},
		{"cross-account named, own IAM denies", direct, mallory, []*Policy{aliceUse, denyDecrypt}, false, "kms:Decrypt", Deny},
		{"cross-account not in key policy", defaultPolicy, mallory, []*Policy{everything}, false, "kms:Decrypt", NotApplicable},
		{"cross-account account named, user with IAM", crossAccountRoot, mallory, []*Policy{aliceUse}, false, "kms:Decrypt", Allow},
		{"cross-account account named, user without IAM", crossAccountRoot, mallory, nil, false, "kms:Decrypt", NotApplicable},
		{"cross-account account named, action not allowed", crossAccountRoot, mallory, []*Policy{everything}, false, "kms:ScheduleKeyDeletion", NotApplicable},
		{"cross-account root of named account", crossAccountRoot, otherRt, nil, false, "kms:Encrypt", Allow},
		{"cross-account Principal *, with own IAM", everyone, mallory, []*Policy{aliceUse}, false, "kms:Encrypt", Allow},
		{"cross-account Principal *, without IAM", everyone, mallory, nil, false, "kms:Encrypt", NotApplicable},
		// a key policy that names another account's root does not delegate this account
		{"other account's root named, same-account user", `{"Statement":{"Effect":"Allow","Principal":{"AWS":"444455556666"},"Action":"kms:*","Resource":"*"}}`, alice, []*Policy{everything}, false, "kms:Encrypt", NotApplicable},
		// the account root of another partition does not name this one
		{"other partition", `{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws-cn:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}}`, alice, []*Policy{everything}, false, "kms:Encrypt", NotApplicable},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := Authorize(keyPolicy(t, c.keyPolicy), acct, c.identity, c.grant, req(c.principal, c.action, nil))
			if got != c.want {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestAuthorizeNilKeyPolicy(t *testing.T) {
	if d := Authorize(nil, acct, nil, false, req(root, "kms:Encrypt", nil)); d != NotApplicable {
		t.Fatalf("nil key policy: %v", d)
	}
	if d := Authorize(nil, acct, nil, true, req(alice, "kms:Encrypt", nil)); d != Allow {
		t.Fatalf("nil key policy with grant: %v", d)
	}
}

// An identity policy handed to Authorize as a key policy names no one.
func TestIdentityPolicyAsKeyPolicyNamesNoOne(t *testing.T) {
	p := identityPolicy(t, allowAll)
	if d := Authorize(p, acct, nil, false, req(alice, "kms:Encrypt", nil)); d != NotApplicable {
		t.Fatalf("got %v", d)
	}
}

func TestNotElements(t *testing.T) {
	p := keyPolicy(t, `{"Statement":[
		{"Effect":"Allow","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"NotAction":["kms:Schedule*","kms:Disable*"],"NotResource":"arn:aws:kms:*:*:key/secret"}]}`)
	for _, c := range []struct {
		principal, action, resource string
		want                        Decision
	}{
		{alice, "kms:Encrypt", keyARN, Allow},
		{bob, "kms:Encrypt", keyARN, NotApplicable},
		{alice, "kms:ScheduleKeyDeletion", keyARN, NotApplicable},
		{alice, "kms:disablekey", keyARN, NotApplicable},
		{alice, "kms:Encrypt", "arn:aws:kms:us-east-1:111122223333:key/secret", NotApplicable},
	} {
		r := req(c.principal, c.action, nil)
		r.Resource = c.resource
		if got := Authorize(p, acct, nil, false, r); got != c.want {
			t.Errorf("%s %s %s: %v, want %v", c.principal, c.action, c.resource, got, c.want)
		}
	}
}

// A Deny with NotPrincipal naming an account root spares only the root,
// not the account's users: AWS's documented pitfall.
func TestNotPrincipalAccountRoot(t *testing.T) {
	p := keyPolicy(t, `{"Statement":[
		{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"},
		{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::111122223333:root","arn:aws:iam::111122223333:user/bob"]},"Action":"kms:*","Resource":"*"}]}`)
	everything := []*Policy{identityPolicy(t, allowAll)}
	for principal, want := range map[string]Decision{root: Allow, bob: Allow, alice: Deny} {
		if got := Authorize(p, acct, everything, false, req(principal, "kms:Encrypt", nil)); got != want {
			t.Errorf("%s: %v, want %v", principal, got, want)
		}
	}
}

func TestServicePrincipals(t *testing.T) {
	p := keyPolicy(t, `{"Statement":[
		{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"},
		{"Effect":"Allow","Principal":{"Service":["cloudtrail.amazonaws.com","logs.us-east-1.amazonaws.com"]},"Action":"kms:GenerateDataKey*","Resource":"*",
		 "Condition":{"StringLike":{"kms:EncryptionContext:aws:cloudtrail:arn":"arn:aws:cloudtrail:*:111122223333:trail/*"}}}]}`)
	ctx := func() *Context {
		return &Context{EncryptionContext: map[string]string{"aws:cloudtrail:arn": "arn:aws:cloudtrail:us-east-1:111122223333:trail/main"}}
	}
	call := func(service, action string, c *Context) Decision {
		return Authorize(p, acct, nil, false, &Request{PrincipalARN: service, Action: action, Resource: keyARN, Context: c})
	}
	if d := call("cloudtrail.amazonaws.com", "kms:GenerateDataKey", ctx()); d != Allow {
		t.Errorf("named service: %v", d)
	}
	if d := call("cloudtrail.amazonaws.com", "kms:GenerateDataKey", &Context{}); d != NotApplicable {
		t.Errorf("named service, condition unmet: %v", d)
	}
	if d := call("cloudtrail.amazonaws.com", "kms:Decrypt", ctx()); d != NotApplicable {
		t.Errorf("named service, other action: %v", d)
	}
	if d := call("s3.amazonaws.com", "kms:GenerateDataKey", ctx()); d != NotApplicable {
		t.Errorf("service not named: %v", d)
	}
	// A service does not match an account principal, nor an ARN a service.
	if d := Authorize(p, acct, nil, false, req(alice, "kms:GenerateDataKey", ctx())); d != NotApplicable {
		t.Errorf("user: %v", d)
	}
}

func TestAuthorizeIdentity(t *testing.T) {
	create := identityPolicy(t, `{"Statement":[{"Effect":"Allow","Action":["kms:CreateKey","kms:List*"],"Resource":"*"}]}`)
	denyAll := identityPolicy(t, `{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}`)
	for _, c := range []struct {
		name      string
		principal string
		identity  []*Policy
		action    string
		want      Decision
	}{
		{"allowed", alice, []*Policy{create}, "kms:CreateKey", Allow},
		{"wildcard", alice, []*Policy{create}, "kms:ListAliases", Allow},
		{"not allowed", alice, []*Policy{create}, "kms:GenerateRandom", NotApplicable},
		{"no policies", alice, nil, "kms:CreateKey", NotApplicable},
		{"deny wins", alice, []*Policy{create, denyAll}, "kms:CreateKey", Deny},
		{"account root", root, nil, "kms:CreateKey", Allow},
		{"account root denied", root, []*Policy{denyAll}, "kms:CreateKey", Deny},
		{"another account's root, in its own account", "arn:aws:iam::444455556666:root", nil, "kms:CreateKey", Allow},
	} {
		r := req(c.principal, c.action, nil)
		r.Resource = "*"
		if got := AuthorizeIdentity(c.identity, r); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	// A caller whose ARN claims another account's root is no root.
	r := &Request{PrincipalARN: "arn:aws:iam::444455556666:root", PrincipalAccount: acct, Action: "kms:CreateKey", Resource: "*"}
	if got := AuthorizeIdentity(nil, r); got != NotApplicable {
		t.Errorf("mismatched root: %v", got)
	}
}

func TestEvaluate(t *testing.T) {
	kp := keyPolicy(t, `{"Statement":[
		{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"},
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"Action":"kms:Encrypt","Resource":"*"},
		{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"Action":"kms:Decrypt","Resource":"*"}]}`)
	for _, c := range []struct {
		principal, action string
		want              Decision
	}{
		{bob, "kms:Encrypt", Allow},
		{bob, "kms:Decrypt", Deny},
		{alice, "kms:Encrypt", NotApplicable}, // delegated: Authorize's business
		{root, "kms:Encrypt", Allow},
	} {
		if got := kp.Evaluate(req(c.principal, c.action, nil)); got != c.want {
			t.Errorf("%s %s: %v, want %v", c.principal, c.action, got, c.want)
		}
	}
	var nilPolicy *Policy
	if nilPolicy.Evaluate(req(bob, "kms:Encrypt", nil)) != NotApplicable {
		t.Error("nil policy decided")
	}
}

func TestCheckLockout(t *testing.T) {
	everything := []*Policy{identityPolicy(t, allowAll)}
	onlyEncrypt := []*Policy{identityPolicy(t, `{"Statement":{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}}`)}
	for _, c := range []struct {
		name     string
		policy   string
		caller   string
		identity []*Policy
		ok       bool
	}{
		{"default policy, root", defaultPolicy, root, nil, true},
		{"default policy, admin via IAM", defaultPolicy, alice, everything, true},
		{"default policy, user whose IAM does not allow it", defaultPolicy, alice, onlyEncrypt, false},
		{"default policy, user without IAM", defaultPolicy, alice, nil, false},
		{"only bob named", `{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"Action":"kms:*","Resource":"*"}}`, alice, everything, false},
		{"caller named for PutKeyPolicy", `{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"kms:PutKeyPolicy","Resource":"*"}}`, alice, nil, true},
		{"caller named for other actions only", `{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"kms:Put*Tags","Resource":"*"}}`, alice, nil, false},
		{"root shut out", `{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"Action":"kms:*","Resource":"*"}}`, root, nil, false},
		{"PutKeyPolicy denied to everyone", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"},{"Effect":"Deny","Principal":"*","Action":"kms:PutKeyPolicy","Resource":"*"}]}`, root, nil, false},
		// conditions on the future request are optimistic: Allow holds, Deny does not apply
		{"allow with a transport condition", `{"Statement":{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}}`, root, nil, true},
		{"deny with a source condition", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"},{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}`, root, nil, true},
		// conditions on who the caller is are known
		{"allow for another account only", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"kms:CallerAccount":"444455556666"}}}}`, root, nil, false},
		{"allow for this caller", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/alice"}}}}`, alice, nil, true},
		{"deny for this caller", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"},{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/alice"}}}]}`, alice, nil, false},
	} {
		err := CheckLockout(keyPolicy(t, c.policy), keyARN, acct, c.caller, acct, c.identity)
		switch {
		case c.ok && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case !c.ok && (!errors.Is(err, ErrLockout) || !errors.Is(err, ErrMalformed)):
			t.Errorf("%s: got %v, want ErrLockout", c.name, err)
		}
	}
	if ErrLockout.Error() != "The new key policy will not allow you to update the key policy in the future." {
		t.Errorf("message: %q", ErrLockout)
	}
}

func TestDefaultKeyPolicy(t *testing.T) {
	doc := DefaultKeyPolicy(acct)
	p := keyPolicy(t, string(doc))
	want := keyPolicy(t, defaultPolicy)
	a, _ := p.MarshalJSON()
	b, _ := want.MarshalJSON()
	if string(a) != string(b) {
		t.Fatalf("default key policy differs from AWS's:\n%s\n%s", a, b)
	}
	if err := CheckLockout(p, keyARN, acct, root, acct, nil); err != nil {
		t.Fatal(err)
	}
}

func TestDecisionString(t *testing.T) {
	for d, want := range map[Decision]string{NotApplicable: "NotApplicable", Allow: "Allow", Deny: "Deny"} {
		if d.String() != want {
			t.Errorf("%d: %s", d, d)
		}
	}
}
