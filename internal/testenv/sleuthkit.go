package testenv

import (
	"bufio"
	"bytes"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TSKFile is one allocated regular file as SleuthKit's fls lists it.
type TSKFile struct {
	Type  string // "r/r" regular file, "l/l" symbolic link
	Inode string
	Size  int64
	Times [4]string // mtime, atime, ctime, crtime as `fls -l` prints them
}

// ntfsFirstUser is the first MFT record that is not a metafile or reserved for one.
const ntfsFirstUser = 24

// SleuthKitFiles lists the allocated regular files of the file system at sectorOffset of img with
// `fls -r -p -l`: the independent answer our logical imaging is compared with. fsType ("ntfs",
// "fat32", "ext4"...) selects what is left out, and why: deleted entries (compared separately);
// TSK's virtual files ($MBR, $FAT1/2, $OrphanFiles, the FAT "(Volume Label Entry)"); NTFS
// metafiles ($MFT ... and everything under $Extend), which evidence copies skip on purpose; and
// NTFS alternate data streams ("file:stream" with the same MFT entry as "file"), since only the
// default stream is exported. types are the fls entry types listed (default "r/r", regular files;
// add "l/l" for symbolic links).
func SleuthKitFiles(t testing.TB, img string, sectorOffset int64, fsType string, types ...string) map[string]TSKFile {
	t.Helper()
	fls := Tool(t, "fls")
	if len(types) == 0 {
		types = []string{"r/r"}
	}
	out, err := exec.Command(fls, "-r", "-p", "-l", "-o", strconv.FormatInt(sectorOffset, 10), img).Output()
	if err != nil {
		t.Fatalf("fls: %v", err)
	}
	files := map[string]TSKFile{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		typ, rest, ok := strings.Cut(sc.Text(), " ")
		if !ok || !slices.Contains(types, typ) || strings.HasPrefix(rest, "* ") {
			continue
		}
		inode, rest, _ := strings.Cut(rest, ":\t")
		fields := strings.Split(rest, "\t")
		if len(fields) < 6 {
			t.Fatalf("fls: unexpected line %q", sc.Text())
		}
		p := fields[0]
		size, err := strconv.ParseInt(fields[5], 10, 64)
		if err != nil {
			t.Fatalf("fls: size in %q: %v", sc.Text(), err)
		}
		switch {
		case strings.HasPrefix(p, "$") && !strings.Contains(p, "/") && (fsType != "ntfs" || ntfsMeta(inode)):
			continue // TSK virtual files, NTFS metafiles
		case fsType == "ntfs" && strings.HasPrefix(p, "$Extend/"):
			continue
		case strings.HasSuffix(p, " (Volume Label Entry)"):
			continue
		}
		files[p] = TSKFile{Type: typ, Inode: inode, Size: size, Times: [4]string(fields[1:5])}
	}
	if fsType == "ntfs" {
		for p, f := range files {
			i := strings.LastIndex(p, ":")
			if i < 0 {
				continue
			}
			if base, ok := files[p[:i]]; ok && mftOf(base.Inode) == mftOf(f.Inode) {
				delete(files, p)
			}
		}
	}
	return files
}

// ICat returns a file's content as SleuthKit's icat reads it.
func ICat(t testing.TB, img string, sectorOffset int64, inode string) []byte {
	t.Helper()
	out, err := exec.Command(Tool(t, "icat"), "-o", strconv.FormatInt(sectorOffset, 10), img, inode).Output()
	if err != nil {
		t.Fatalf("icat %s: %v", inode, err)
	}
	return out
}

func mftOf(inode string) string { return strings.SplitN(inode, "-", 2)[0] }

func ntfsMeta(inode string) bool {
	n, err := strconv.Atoi(mftOf(inode))
	return err == nil && n < ntfsFirstUser
}
