package chunk

import (
	"bytes"
	"context"
	"testing"
)

// TestGolden pins the chunk format: boundaries and hashes of 2 MiB of seeded
// ChaCha8 data under DefaultParams, and the FileHash. If this fails, every
// device of every share would cut differently: do not "fix" the vectors.
func TestGolden(t *testing.T) {
	want := []struct {
		off, length int
		hash        string
	}{
		{0, 84511, "8879c5c04474b4bcd53ba3d1b8a0486feb1ad730a8f13fa5e0e3ceddaa816ca3"},
		{84511, 65584, "f8287f2ec2fc6ecac186579910e119e3e79063871cf074bddeb68c37d5d60e72"},
		{150095, 30086, "864fcfb08182b24e26032574b32eba4ecdbbb59dfe16eaf6228d6fe6cd94bac6"},
		{180181, 69735, "fb1599b2a5dffc2858e655d79fa04d08b0f305a77724673295b3d4bac8cb646d"},
		{249916, 66065, "b839c6d5431b00dcd9177eedf16026dc7ba5ddc57dc8fc2fd0b8c2c19001713f"},
		{315981, 96642, "0d731c91c479c6884b89e9f5b765e816f43bc76fa0c4a50d6a3ba3fc3d0bf784"},
		{412623, 38323, "7f7c2f655911a35333c44a909834e3057b7ff1d5c4686126024ff2ab534230d1"},
		{450946, 82922, "2960a76550078c65d0daa7f25aa960192d83a6bdd230da1d3b016612c3f1e8e7"},
		{533868, 84610, "7ebb3803ff4cd333a2322f2cfb5337200ab415eaef49771da188fe13e5ec2515"},
		{618478, 66804, "14c7a31a84bbde5d1e98aeaef4bc02995b445450f2a1586397420ad3d6a3ad49"},
		{685282, 79686, "9d1474da9313d7db86585f604cd7c11e154479ca83098f73ab8e75fec3f9d8b5"},
		{764968, 73326, "b2a075d1afee158d7b6af7cf40da7b776af9564dc07b97fed230d713cf36ac85"},
		{838294, 18188, "72be50688583f2bcdcd3d37b9a0b7ca194d712877a2e1d01d498086dcf05dc6c"},
		{856482, 88418, "d5d820e3d605239725708d67bfcc338255d18005585b0cec6629a603167fb161"},
		{944900, 162395, "0df1749ff55a7cfc1dc4374ae329885704cff3345c42cb450ce39c3e9a0f6c93"},
		{1107295, 64219, "6d7b965858e3780ef5f1699c853c5a202ea581d90f7f88fdea789be6ff3ee67a"},
		{1171514, 77086, "2a6bd658c2ac8cf40ad8b7106f26a198d9abba603129fb968bf37bda703e71f3"},
		{1248600, 84269, "85ba02bc3810218dd1d93390f8e89e919e86b3666ac6d3f860cf057acc858faa"},
		{1332869, 67589, "37e332f87e8dd142bcdb9628e00c07115f54eb1a8d16dd979cb960165a63915a"},
		{1400458, 69548, "f622c0aa607ff2402edbc516600e1d0f26ed492d29fb62e41c91b3abe948230c"},
		{1470006, 89592, "3a9c0ed2832dd5ca63ccb97d0c955d85c05d4fd5aeb1be70de1b497df84d2c29"},
		{1559598, 82943, "1aa43987a24b3a80cac86d1f7bc2867d98a513702dad3874e5e0c863e5c8178a"},
		{1642541, 68105, "6768ac69fa8002fcd51a15cae58ae30bda7ed05c52f5902984c206f13bf2b890"},
		{1710646, 74048, "c2b7ae7689a11d33d1f575965dc757da8fb86d9c21458f981c8b8f9169fe76e7"},
		{1784694, 115872, "364ce3ce626e4c70ecdc1902dfae75a79b91e959e7c782fefd6a0c2205b45190"},
		{1900566, 43556, "860ca7f48fee555a06d66b1013371a06fc329a3ffe53dec8690a6187495fed5e"},
		{1944122, 98664, "6616c275db0c2f041d698f3c4a9659bcafe25f8bec4c0ded8a2f5bf5fcb1bd5d"},
		{2042786, 40934, "34feee09cdc859a4ce1397e29c4a3556fee4e81ae10b25dfa865c21366ba6894"},
		{2083720, 13432, "e99c82b1fb9cb8f5b0554d1d8ee3d086d23ae404bc7b0b2acffa900f508c7326"},
	}
	const wantFile = "14c80d2f34b210c6d246062c078cc9ca0c2703acd753325d4dd1551ba299f6a9"

	data := randBytes(2024, 2<<20)
	got, err := SplitAll(context.Background(), bytes.NewReader(data), DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d chunks, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Offset != int64(w.off) || g.Length != w.length || g.Hash.String() != w.hash {
			t.Errorf("chunk %d = {%d, %d, %s}, want {%d, %d, %s}", i, g.Offset, g.Length, g.Hash, w.off, w.length, w.hash)
		}
	}
	if fh := FileHash(got).String(); fh != wantFile {
		t.Errorf("FileHash = %s, want %s", fh, wantFile)
	}
}
