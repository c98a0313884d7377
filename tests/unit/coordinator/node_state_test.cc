// The node lifecycle's table (coordinator/node_state.h): the edges the job manager
// takes are allowed, nothing goes back, the words coordctl shows are the old ones.
#include "coordinator/node_state.h"

#include <gtest/gtest.h>

namespace coord::coordinator {
namespace {

const NodeState kAll[] = {NODE_STATE_UNKNOWN, NODE_PENDING, NODE_LAUNCHED,
                          NODE_FAILED,        NODE_UNREACHABLE, NODE_LOST,
                          NODE_DONE,          NODE_SPARE,   NODE_EXCLUDED};

TEST(NodeStateTest, AllowsTheLifecycle) {
  EXPECT_TRUE(IsValidNodeTransition(NODE_STATE_UNKNOWN, NODE_PENDING));
  EXPECT_TRUE(IsValidNodeTransition(NODE_PENDING, NODE_LAUNCHED));
  EXPECT_TRUE(IsValidNodeTransition(NODE_LAUNCHED, NODE_DONE));
  EXPECT_TRUE(IsValidNodeTransition(NODE_PENDING, NODE_FAILED));
  EXPECT_TRUE(IsValidNodeTransition(NODE_PENDING, NODE_UNREACHABLE));
  EXPECT_TRUE(IsValidNodeTransition(NODE_LAUNCHED, NODE_LOST));
  EXPECT_TRUE(IsValidNodeTransition(NODE_DONE, NODE_LOST));
  EXPECT_TRUE(IsValidNodeTransition(NODE_STATE_UNKNOWN, NODE_SPARE));
  EXPECT_TRUE(IsValidNodeTransition(NODE_SPARE, NODE_EXCLUDED));
}

TEST(NodeStateTest, RejectsEverythingElse) {
  int edges = 0;
  for (NodeState from : kAll) {
    for (NodeState to : kAll) edges += IsValidNodeTransition(from, to) ? 1 : 0;
  }
  EXPECT_EQ(edges, 10);  // the nine above and UNKNOWN -> EXCLUDED (a generation's layout)
  for (NodeState from : {NODE_FAILED, NODE_UNREACHABLE, NODE_LOST, NODE_EXCLUDED}) {
    for (NodeState to : kAll) {
      EXPECT_FALSE(IsValidNodeTransition(from, to)) << NodeStateWord(from) << " -> " << NodeStateWord(to);
    }
  }
  EXPECT_FALSE(IsValidNodeTransition(NODE_DONE, NODE_LAUNCHED));
  EXPECT_FALSE(IsValidNodeTransition(NODE_PENDING, NODE_DONE));   // launched first
  EXPECT_FALSE(IsValidNodeTransition(NODE_SPARE, NODE_LAUNCHED));  // a new layout instead
}

TEST(NodeStateTest, SetNodeStateAppliesEvenABadEdgeAndSameStateIsANoOp) {
  NodeStatus n;
  SetNodeState("job", &n, NODE_PENDING);
  SetNodeState("job", &n, NODE_PENDING);
  EXPECT_EQ(n.state(), NODE_PENDING);
  SetNodeState("job", &n, NODE_DONE);  // logged as an internal error
  EXPECT_EQ(n.state(), NODE_DONE);
}

TEST(NodeStateTest, WordsAreWhatCoordctlShowed) {
  EXPECT_STREQ(NodeStateWord(NODE_UNREACHABLE), "unreachable");
  EXPECT_STREQ(NodeStateWord(NODE_EXCLUDED), "excluded");
  EXPECT_STREQ(NodeStateWord(static_cast<NodeState>(42)), "unknown");
  for (NodeState s : kAll) {
    if (s != NODE_STATE_UNKNOWN) {
      EXPECT_STRNE(NodeStateWord(s), "unknown") << NodeState_Name(s);
    }
  }
}

}  // namespace
}  // namespace coord::coordinator
