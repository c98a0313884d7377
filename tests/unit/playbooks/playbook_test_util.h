// Shared by the playbook unit tests: a VarLookup over a plain map (what the
// runner's VarScope provides, without layers), the documented example
// playbook, and parse helpers that fail the test with the parser's message.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "playbooks/runner/playbook_parser.h"
#include "playbooks/runner/template.h"

namespace coord::playbooks {

inline VarLookup MapLookup(const Vars& vars) {
  return [vars](const std::string& name) -> StatusOr<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return NotFound("undefined variable \"" + name + "\"");
    return it->second;
  };
}

inline constexpr char kFile[] = "pb.yaml";

// The example of playbook.h's header, as a user would write it. Tests assert
// positions in it (line:col), so edit it only with them.
inline constexpr char kExample[] = R"(# A playbook is a list of plays.
- name: Prepare an HCC node
  hosts: all
  become: true
  vars:
    cfs_mount: /mnt/cfs
  tasks:
    - name: Install NFS client
      shell: yum install -y nfs-utils
      when: os_family == "RedHat"
      creates: /sbin/mount.nfs
    - name: Mount the CFS export
      shell: mount -t nfs -o vers=4.0,noresvport {{ cfs_export }} {{ cfs_mount }}
      unless: mountpoint -q {{ cfs_mount }}
      timeout_s: 120
    - name: Check the driver
      command: nvidia-smi -L
      changed_when: false
    - name: Upload the agent
      copy: {src: "{{ agent_binary }}", dest: /usr/local/bin/coord-agent, mode: "0755"}
      become: false
    - copy:
        content: "cfs={{ cfs_mount }}\n"
        dest: /etc/coord/cfs.conf
)";

inline Playbook ParseOk(const std::string& text) {
  StatusOr<Playbook> pb = ParsePlaybook(text, kFile);
  EXPECT_TRUE(pb.ok()) << pb.status().ToString();
  return pb.ok() ? *pb : Playbook{};
}

// The parser's message; fails the test if the text parses or the code is not
// InvalidArgument.
inline std::string ParseError(const std::string& text) {
  StatusOr<Playbook> pb = ParsePlaybook(text, kFile);
  EXPECT_FALSE(pb.ok()) << "parsed without error:\n" << text;
  if (pb.ok()) return "";
  EXPECT_EQ(pb.status().code(), StatusCode::kInvalidArgument);
  return pb.status().message();
}

}  // namespace coord::playbooks
