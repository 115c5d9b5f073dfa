// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @dev Test-side netting trees. Leaves are hashed and paired exactly like Market (and
/// gridledger.merkle): double keccak leaves, commutative pairs, an odd last node promoted. The
/// leaf order is the caller's: MerkleProof accepts any tree shape built with commutative pairs,
/// so tests need not sort like the Python builder does.
library NettingTree {
    function leaf(uint32 rootSeq, address account, int96 cumulativeMicro) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(rootSeq, account, cumulativeMicro))));
    }

    function hashPair(bytes32 a, bytes32 b) internal pure returns (bytes32) {
        return a < b ? keccak256(abi.encode(a, b)) : keccak256(abi.encode(b, a));
    }

    /// All layers, leaves first, root last.
    function layers(bytes32[] memory leaves) internal pure returns (bytes32[][] memory out) {
        uint256 depth = 1;
        for (uint256 n = leaves.length; n > 1; n = (n + 1) / 2) {
            ++depth;
        }
        out = new bytes32[][](depth);
        out[0] = leaves;
        for (uint256 d = 1; d < depth; ++d) {
            bytes32[] memory below = out[d - 1];
            bytes32[] memory above = new bytes32[]((below.length + 1) / 2);
            for (uint256 i = 0; i + 1 < below.length; i += 2) {
                above[i / 2] = hashPair(below[i], below[i + 1]);
            }
            if (below.length % 2 == 1) above[above.length - 1] = below[below.length - 1];
            out[d] = above;
        }
    }

    function root(bytes32[][] memory tree) internal pure returns (bytes32) {
        return tree[tree.length - 1].length == 0 ? bytes32(0) : tree[tree.length - 1][0];
    }

    function proof(bytes32[][] memory tree, uint256 index) internal pure returns (bytes32[] memory siblings) {
        bytes32[] memory buffer = new bytes32[](tree.length);
        uint256 count;
        for (uint256 d = 0; d + 1 < tree.length; ++d) {
            uint256 sibling = index ^ 1;
            if (sibling < tree[d].length) buffer[count++] = tree[d][sibling];
            index /= 2;
        }
        siblings = new bytes32[](count);
        for (uint256 i = 0; i < count; ++i) {
            siblings[i] = buffer[i];
        }
    }
}
