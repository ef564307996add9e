// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.20;

/// @title CheckpointAnchor: the latest (size, root) of each transparency log, and no fork.
/// @notice Per log origin, the operator the owner registered posts checkpoints. Every
/// anchor after the first must come with an RFC 9162 consistency proof from the anchored
/// size (section 2.1.4.2 of RFC 9162, verified here with the SHA-256 precompile), so a
/// log that rolled back or forked cannot be anchored: the chain refuses it.
contract CheckpointAnchor {
    struct Anchor {
        uint64 size;
        bytes32 root;
        uint64 blockNumber;
    }

    address public immutable owner;
    mapping(bytes32 => address) public operatorOf;
    mapping(bytes32 => Anchor) public latest;

    event OperatorSet(bytes32 indexed originHash, string origin, address operator);
    event Anchored(bytes32 indexed originHash, uint64 size, bytes32 root, uint64 previousSize);

    error NotOwner();
    error NotOperator();
    error NotGrowing(uint64 anchored, uint64 offered);
    error InconsistentProof();

    constructor() {
        owner = msg.sender;
    }

    /// @notice Register (or replace) the account allowed to anchor the log `origin`.
    function setOperator(string calldata origin, address operator) external {
        if (msg.sender != owner) revert NotOwner();
        bytes32 h = keccak256(bytes(origin));
        operatorOf[h] = operator;
        emit OperatorSet(h, origin, operator);
    }

    /// @notice Anchor checkpoint (size, root) of the log whose origin hashes to
    /// `originHash`, proving it extends the anchored one with `proof`.
    function anchor(bytes32 originHash, uint64 size, bytes32 root, bytes32[] calldata proof)
        external
    {
        if (msg.sender != operatorOf[originHash]) revert NotOperator();
        Anchor memory prev = latest[originHash];
        if (size <= prev.size) revert NotGrowing(prev.size, size);
        if (prev.size != 0 && !consistent(prev.size, size, prev.root, root, proof)) {
            revert InconsistentProof();
        }
        latest[originHash] = Anchor(size, root, uint64(block.number));
        emit Anchored(originHash, size, root, prev.size);
    }

    /// @notice RFC 9162 section 2.1.4.2: does `proof` show the tree of size `second`
    /// and root `secondRoot` extends the one of size `first` and root `firstRoot`?
    function consistent(
        uint64 first,
        uint64 second,
        bytes32 firstRoot,
        bytes32 secondRoot,
        bytes32[] calldata proof
    ) public pure returns (bool) {
        if (first == 0 || first >= second || proof.length == 0 || proof.length > 128) {
            return false;
        }
        uint256 i = 0;
        bytes32 fr;
        bytes32 sr;
        // Step 1: when first is a power of two, the path starts with first's own root.
        if ((first & (first - 1)) == 0) {
            fr = firstRoot;
        } else {
            fr = proof[0];
            i = 1;
        }
        sr = fr;
        uint64 fn = first - 1;
        uint64 sn = second - 1;
        while ((fn & 1) == 1) {
            fn >>= 1;
            sn >>= 1;
        }
        for (; i < proof.length; i++) {
            if (sn == 0) return false;
            bytes32 c = proof[i];
            if ((fn & 1) == 1 || fn == sn) {
                fr = _node(c, fr);
                sr = _node(c, sr);
                while ((fn & 1) == 0 && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
            } else {
                sr = _node(sr, c);
            }
            fn >>= 1;
            sn >>= 1;
        }
        return fr == firstRoot && sr == secondRoot && sn == 0;
    }

    /// @dev RFC 6962 interior node: SHA-256(0x01 || left || right).
    function _node(bytes32 left, bytes32 right) private pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x01), left, right));
    }
}
