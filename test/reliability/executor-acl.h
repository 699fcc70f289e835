// StrataFS reliability suite: POSIX ACLs for the executor (included by
// executor.c). ACLs travel as the system.posix_acl_access/_default xattrs in
// the kernel's binary form: a u32 version (2), then entries of u16 tag, u16
// permission bits and u32 id, sorted by tag and id.
//
// Text form, used in requests and in tree output: comma-separated entries
// `u::7`, `u:2002:5`, `g::4`, `g:2100:6`, `m::7`, `o::0`.

#define ACL_XATTR_VERSION 2
#define ACL_TAG_USER_OBJ 0x01
#define ACL_TAG_USER 0x02
#define ACL_TAG_GROUP_OBJ 0x04
#define ACL_TAG_GROUP 0x08
#define ACL_TAG_MASK 0x10
#define ACL_TAG_OTHER 0x20
#define ACL_NO_ID 0xffffffffu
#define ACL_MAX_ENTRIES 16

struct aclEntry {
  uint16_t tag;
  uint16_t perm;
  uint32_t id;
};

static int aclTag(char c, int named, uint16_t *tag) {
  switch (c) {
  case 'u': *tag = named ? ACL_TAG_USER : ACL_TAG_USER_OBJ; return 0;
  case 'g': *tag = named ? ACL_TAG_GROUP : ACL_TAG_GROUP_OBJ; return 0;
  case 'm': *tag = ACL_TAG_MASK; return 0;
  case 'o': *tag = ACL_TAG_OTHER; return 0;
  default: return -1;
  }
}

// Text to the xattr blob; entries stay in the order given (the kernel rejects a bad order).
static int aclEncode(const char *text, unsigned char *dst, size_t *len) {
  char copy[512];
  snprintf(copy, sizeof copy, "%s", text);
  uint32_t version = ACL_XATTR_VERSION;
  memcpy(dst, &version, 4);
  size_t used = 4;
  int count = 0;
  for (char *e = strtok(copy, ","); e; e = strtok(NULL, ",")) {
    // TYPE:ID:PERM with ID empty for the owner, owning group, mask and other.
    char *first = strchr(e, ':');
    char *second = first ? strchr(first + 1, ':') : NULL;
    if (!first || !second || first != e + 1 || count >= ACL_MAX_ENTRIES) goto bad;
    struct aclEntry entry;
    int named = second > first + 1;
    if (aclTag(e[0], named, &entry.tag) != 0) goto bad;
    entry.id = named ? (uint32_t)strtoul(first + 1, NULL, 10) : ACL_NO_ID;
    entry.perm = (uint16_t)strtoul(second + 1, NULL, 8);
    memcpy(dst + used, &entry, sizeof entry);
    used += sizeof entry;
    count++;
  }
  *len = used;
  return 0;
bad:
  errno = EINVAL;
  return -1;
}

// The xattr blob back to text (same form as requests), for replies and trees.
static void aclDecode(const unsigned char *blob, ssize_t len, char *dst, size_t dstLen) {
  size_t used = 0;
  dst[0] = '\0';
  for (ssize_t off = 4; off + (ssize_t)sizeof(struct aclEntry) <= len; off += sizeof(struct aclEntry)) {
    struct aclEntry e;
    memcpy(&e, blob + off, sizeof e);
    char type = e.tag & (ACL_TAG_USER_OBJ | ACL_TAG_USER)    ? 'u'
                : e.tag & (ACL_TAG_GROUP_OBJ | ACL_TAG_GROUP) ? 'g'
                : e.tag == ACL_TAG_MASK                       ? 'm'
                                                              : 'o';
    char id[16] = "";
    if (e.tag == ACL_TAG_USER || e.tag == ACL_TAG_GROUP) snprintf(id, sizeof id, "%u", e.id);
    int w = snprintf(dst + used, dstLen - used, "%s%c:%s:%o", used ? "," : "", type, id, e.perm);
    if (w < 0 || (size_t)w >= dstLen - used) break;
    used += (size_t)w;
  }
}

static const char *aclName(const char *kind) {
  if (!strcmp(kind, "access")) return "system.posix_acl_access";
  if (!strcmp(kind, "default")) return "system.posix_acl_default";
  return NULL;
}

// " acl:ACCESS/DEFAULT" of a path ("-" for none), for the tree.
static void emitAcls(const char *path) {
  static unsigned char blob[4096];
  char text[1024];
  emit(" acl:");
  for (int i = 0; i < 2; i++) {
    ssize_t n = lgetxattr(path, i == 0 ? "system.posix_acl_access" : "system.posix_acl_default", blob,
                          sizeof blob);
    if (n < 0 && (errno == ENODATA || errno == EOPNOTSUPP)) emit("%s-", i ? "/" : "");
    else if (n < 0) emit("%s%s", i ? "/" : "", strerrorname_np(errno));
    else {
      aclDecode(blob, n, text, sizeof text);
      emit("%s%s", i ? "/" : "", text);
    }
  }
}
