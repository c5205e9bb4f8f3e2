package asm

import (
	"bytes"
	"crypto/cipher"
	"encoding/json"
	"io/fs"
	"testing"

	"github.com/c2sp/wycheproof"
)

type vector struct {
	key, nonce, pt, aad, ct, tag string
}

// cavpVectors are from NIST CAVP GCMVS (CAVS 14.0), gcmEncryptExtIV128.rsp
// and gcmEncryptExtIV256.rsp, https://csrc.nist.gov/Projects/
// Cryptographic-Algorithm-Validation-Program/CAVP-TESTING-BLOCK-CIPHER-MODES:
// Count 0 and 1 of each [IVlen = 96][Taglen = 128] section with
// (PTlen, AADlen) = (0,0), (0,128), (128,0), (408,160), (408,720), (104,0).
var cavpVectors = []vector{
	// AES-128
	{"11754cd72aec309bf52f7687212e8957", "3c819d9a9bed087615030b65", "", "", "", "250327c674aaf477aef2675748cf6971"},
	{"ca47248ac0b6f8372a97ac43508308ed", "ffd2b598feabc9019262d2be", "", "", "", "60d20404af527d248d893ae495707d1a"},
	{"77be63708971c4e240d1cb79e8d77feb", "e0e00f19fed7ba0136a797f3", "", "7a43ec1d9c0a5a78a0b16533a6213cab", "", "209fcc8d3675ed938e9c7166709dd946"},
	{"7680c5d3ca6154758e510f4d25b98820", "f8f105f9c3df4965780321f8", "", "c94c410194c765e3dcc7964379758ed3", "", "94dca8edfcf90bb74b153c8d48a17930"},
	{"7fddb57453c241d03efbed3ac44e371c", "ee283a3fc75575e33efd4887", "d5de42b461646c255c87bd2962d3b9a2", "", "2ccda4a5415cb91e135c2a0f78c9b2fd", "b36d1df9b9d5e596f83e8b7f52971cb3"},
	{"ab72c77b97cb5fe9a382d9fe81ffdbed", "54cc7dc2c37ec006bcc6d1da", "007c5e5b3e59df24a7c355584fc1518d", "", "0e1bde206a07a9c2c1b65300f8c64997", "2b4401346697138c7a4891ee59867d0c"},
	{"fe47fcce5fc32665d2ae399e4eec72ba", "5adb9609dbaeb58cbd6e7275",
		"7c0e88c88899a779228465074797cd4c2e1498d259b54390b85e3eef1c02df60e743f1b840382c4bccaf3bafb4ca8429bea063",
		"88319d6e1d3ffa5f987199166c8a9b56c2aeba5a",
		"98f4826f05a265e6dd2be82db241c0fbbbf9ffb1c173aa83964b7cf5393043736365253ddbc5db8778371495da76d269e5db3e",
		"291ef1982e4defedaa2249f898556b47"},
	{"ec0c2ba17aa95cd6afffe949da9cc3a8", "296bce5b50b7d66096d627ef",
		"b85b3753535b825cbe5f632c0b843c741351f18aa484281aebec2f45bb9eea2d79d987b764b9611f6c0f8641843d5d58f3a242",
		"f8d00f05d22bf68599bcdeb131292ad6e2df5d14",
		"a7443d31c26bdf2a1c945e29ee4bd344a99cfaf3aa71f8b3f191f83c2adfc7a07162995506fde6309ffc19e716eddf1a828c5a",
		"890147971946b627c40016da1ecf3e77"},
	{"2c1f21cf0f6fb3661943155c3e3d8492", "23cb5ff362e22426984d1907",
		"42f758836986954db44bf37c6ef5e4ac0adaf38f27252a1b82d02ea949c8a1a2dbc0d68b5615ba7c1220ff6510e259f06655d8",
		"5d3624879d35e46849953e45a32a624d6a6c536ed9857c613b572b0333e701557a713e3f010ecdf9a6bd6c9e3e44b065208645aff4aabee611b391528514170084ccf587177f4488f33cfb5e979e42b6e1cfc0a60238982a7aec",
		"81824f0e0d523db30d3da369fdc0d60894c7a0a20646dd015073ad2732bd989b14a222b6ad57af43e1895df9dca2a5344a62cc",
		"57a3ee28136e94c74838997ae9823f3a"},
	{"d9f7d2411091f947b4d6f1e2d1f0fb2e", "e1934f5db57cc983e6b180e7",
		"73ed042327f70fe9c572a61545eda8b2a0c6e1d6c291ef19248e973aee6c312012f490c2c6f6166f4a59431e182663fcaea05a",
		"0a8a18a7150e940c3d87b38e73baee9a5c049ee21795663e264b694a949822b639092d0e67015e86363583fcf0ca645af9f43375f05fdb4ce84f411dcbca73c2220dea03a20115d2e51398344b16bee1ed7c499b353d6c597af8",
		"aaadbd5c92e9151ce3db7210b8714126b73e43436d242677afa50384f2149b831f1d573c7891c2a91fbc48db29967ec9542b23",
		"21b51ca862cb637cdd03b99a0f93b134"},
	{"fe9bb47deb3a61e423c2231841cfd1fb", "4d328eb776f500a2f7fb47aa", "f1cc3818e421876bb6b8bbd6c9", "", "b88c5c1977b35b517b0aeae967", "43fd4727fe5cdb4b5b42818dea7ef8c9"},
	{"6703df3701a7f54911ca72e24dca046a", "12823ab601c350ea4bc2488c", "793cd125b0b84a043e3ac67717", "", "b2051c80014f42f08735a7b0cd", "38e6bcd29962e5f2c13626b85a877101"},

	// AES-256
	{"b52c505a37d78eda5dd34f20c22540ea1b58963cf8e5bf8ffa85f9f2492505b4", "516c33929df5a3284ff463d7", "", "", "", "bdc1ac884d332457a1d2664f168c76f0"},
	{"5fe0861cdc2690ce69b3658c7f26f8458eec1c9243c5ba0845305d897e96ca0f", "770ac1a5a3d476d5d96944a1", "", "", "", "196d691e1047093ca4b3d2ef4baba216"},
	{"78dc4e0aaf52d935c3c01eea57428f00ca1fd475f5da86a49c8dd73d68c8e223", "d79cf22d504cc793c3fb6c8a", "", "b96baa8c1c75a671bfb2d08d06be5f36", "", "3e5d486aa2e30b22e040b85723a06e76"},
	{"4457ff33683cca6ca493878bdc00373893a9763412eef8cddb54f91318e0da88", "699d1f29d7b8c55300bb1fd2", "", "6749daeea367d0e9809e2dc2f309e6e3", "", "d60c74d2517fde4a74e0cd4709ed43a9"},
	{"31bdadd96698c204aa9ce1448ea94ae1fb4a9a0b3c9d773b51bb1822666b8f22", "0d18e06c7c725ac9e362e1ce", "2db5168e932556f8089a0622981d017d", "", "fa4362189661d163fcd6a56d8bf0405a", "d636ac1bbedd5cc3ee727dc2ab4a9489"},
	{"460fc864972261c2560e1eb88761ff1c992b982497bd2ac36c04071cbb8e5d99", "8a4a16b9e210eb68bcb6f58d", "99e4e926ffe927f691893fb79a96b067", "", "133fc15751621b5f325c7ff71ce08324", "ec4e87e0cf74a13618d0b68636ba9fa7"},
	{"24501ad384e473963d476edcfe08205237acfd49b5b8f33857f8114e863fec7f", "9ff18563b978ec281b3f2794",
		"27f348f9cdc0c5bd5e66b1ccb63ad920ff2219d14e8d631b3872265cf117ee86757accb158bd9abb3868fdc0d0b074b5f01b2c",
		"adb5ec720ccf9898500028bf34afccbcaca126ef",
		"eb7cb754c824e8d96f7c6d9b76c7d26fb874ffbf1d65c6f64a698d839b0b06145dae82057ad55994cf59ad7f67c0fa5e85fab8",
		"bc95c532fecc594c36d1550286a7a3f0"},
	{"fb43f5ab4a1738a30c1e053d484a94254125d55dccee1ad67c368bc1a985d235", "9fbb5f8252db0bca21f1c230",
		"34b797bb82250e23c5e796db2c37e488b3b99d1b981cea5e5b0c61a0b39adb6bd6ef1f50722e2e4f81115cfcf53f842e2a6c08",
		"98f8ae1735c39f732e2cbee1156dabeb854ec7a2",
		"871cd53d95a8b806bd4821e6c4456204d27fd704ba3d07ce25872dc604ea5c5ea13322186b7489db4fa060c1fd4159692612c8",
		"07b48e4a32fac47e115d7ac7445d8330"},
	{"148579a3cbca86d5520d66c0ec71ca5f7e41ba78e56dc6eebd566fed547fe691", "b08a5ea1927499c6ecbfd4e0",
		"9d0b15fdf1bd595f91f8b3abc0f7dec927dfd4799935a1795d9ce00c9b879434420fe42c275a7cd7b39d638fb81ca52b49dc41",
		"e4f963f015ffbb99ee3349bbaf7e8e8e6c2a71c230a48f9d59860a29091d2747e01a5ca572347e247d25f56ba7ae8e05cde2be3c97931292c02370208ecd097ef692687fecf2f419d3200162a6480a57dad408a0dfeb492e2c5d",
		"2097e372950a5e9383c675e89eea1c314f999159f5611344b298cda45e62843716f215f82ee663919c64002a5c198d7878fd3f",
		"adbecdb0d5c2224d804d2886ff9a5760"},
	{"e49af19182faef0ebeeba9f2d3be044e77b1212358366e4ef59e008aebcd9788", "e7f37d79a6a487a5a703edbb",
		"461cd0caf7427a3d44408d825ed719237272ecd503b9094d1f62c97d63ed83a0b50bdc804ffdd7991da7a5b6dcf48d4bcd2cbc",
		"19a9a1cfc647346781bef51ed9070d05f99a0e0192a223c5cd2522dbdf97d9739dd39fb178ade3339e68774b058aa03e9a20a9a205bc05f32381df4d63396ef691fefd5a71b49a2ad82d5ea428778ca47ee1398792762413cff4",
		"32ca3588e3e56eb4c8301b009d8b84b8a900b2b88ca3c21944205e9dd7311757b51394ae90d8bb3807b471677614f4198af909",
		"3e403d035c71d88f1be1a256c89ba6ad"},
	{"82c4f12eeec3b2d3d157b0f992d292b237478d2cecc1d5f161389b97f999057a", "7b40b20f5f397177990ef2d1", "982a296ee1cd7086afad976945", "", "ec8e05a0471d6b43a59ca5335f", "113ddeafc62373cac2f5951bb9165249"},
	{"db4340af2f835a6c6d7ea0ca9d83ca81ba02c29b7410f221cb6071114e393240", "40e438357dd80a85cac3349e", "8ddb3397bd42853193cb0f80c9", "", "b694118c85c41abf69e229cb0f", "c07f1b8aafbd152f697eb67f2a85fe45"},
}

func TestCAVP(t *testing.T) {
	forEachKernel(t, func(t *testing.T, newAEAD func([]byte) cipher.AEAD) {
		for i, v := range cavpVectors {
			key, nonce, aad := unhex(t, v.key), unhex(t, v.nonce), unhex(t, v.aad)
			pt, sealed := unhex(t, v.pt), append(unhex(t, v.ct), unhex(t, v.tag)...)
			checkPositive(t, i, newAEAD(key), nonce, pt, aad, sealed)
		}
	})
}

// checkPositive checks a valid vector both ways, then that flipping one bit
// of the nonce, the additional data, the ciphertext or the tag makes Open
// fail.
func checkPositive(t *testing.T, id int, a cipher.AEAD, nonce, pt, aad, sealed []byte) {
	t.Helper()
	if got := a.Seal(nil, nonce, pt, aad); !bytes.Equal(got, sealed) {
		t.Errorf("vector %d: Seal = %x, want %x", id, got, sealed)
	}
	if got, err := a.Open(nil, nonce, sealed, aad); err != nil || !bytes.Equal(got, pt) {
		t.Errorf("vector %d: Open = %x, %v; want %x", id, got, err, pt)
	}
	flip := func(b []byte, what string) {
		if len(b) == 0 {
			return
		}
		b[len(b)/2] ^= 0x10
		if _, err := a.Open(nil, nonce, sealed, aad); err == nil {
			t.Errorf("vector %d: Open accepted a flipped bit in the %s", id, what)
		}
		b[len(b)/2] ^= 0x10
	}
	flip(nonce, "nonce")
	flip(aad, "additional data")
	flip(sealed[:len(sealed)-tagSize], "ciphertext")
	flip(sealed[len(sealed)-tagSize:], "tag")
}

type wycheproofFile struct {
	TestGroups []struct {
		KeySize, IVSize, TagSize int
		Tests                    []struct {
			TcID                               int
			Comment                            string
			Key, IV, AAD, Msg, CT, Tag, Result string
		}
	}
}

// TestWycheproof runs every aes_gcm_test.json vector from the
// github.com/c2sp/wycheproof module that this package supports: AES-128 and
// AES-256 with a 96-bit IV and a 128-bit tag.
func TestWycheproof(t *testing.T) {
	raw, err := fs.ReadFile(wycheproof.TestVectors, "aes_gcm_test.json")
	if err != nil {
		t.Fatal(err)
	}
	var f wycheproofFile
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	forEachKernel(t, func(t *testing.T, newAEAD func([]byte) cipher.AEAD) {
		ran := 0
		for _, g := range f.TestGroups {
			if g.IVSize != 96 || g.TagSize != 128 || (g.KeySize != 128 && g.KeySize != 256) {
				continue
			}
			for _, tc := range g.Tests {
				key, nonce, aad := unhex(t, tc.Key), unhex(t, tc.IV), unhex(t, tc.AAD)
				pt, sealed := unhex(t, tc.Msg), append(unhex(t, tc.CT), unhex(t, tc.Tag)...)
				a := newAEAD(key)
				switch tc.Result {
				case "valid":
					checkPositive(t, tc.TcID, a, nonce, pt, aad, sealed)
				case "invalid":
					if got, err := a.Open(nil, nonce, sealed, aad); err == nil {
						t.Errorf("tcId %d (%s): Open accepted an invalid ciphertext: %x", tc.TcID, tc.Comment, got)
					}
				default:
					t.Fatalf("tcId %d: unexpected result %q", tc.TcID, tc.Result)
				}
				ran++
			}
		}
		if ran < 100 {
			t.Fatalf("only %d Wycheproof vectors ran", ran)
		}
	})
}
