// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.20;

/// @notice The function of EZKL's generated Halo2 verifier: it returns true for a valid
/// proof and reverts (or returns false) otherwise.
interface IHalo2Verifier {
    function verifyProof(bytes calldata proof, uint256[] calldata instances)
        external
        returns (bool);
}

/// @title InferenceSettlement: inference results accepted only with a valid ZK proof.
/// @notice The owner registers, once per circuit (an inferproof ZK setup, named by its
/// digest), the verifier EZKL generated for it, the model digest the setup is for and
/// how its public instances divide into input hashes, weight hashes, public inputs and
/// outputs. Anyone may then settle a result: the contract checks the proof with that
/// verifier and records the model digest, a commitment to the input and the output.
/// No node is trusted: without a proof that verifies, nothing is recorded. Registration
/// is final, so the verifier behind a settled result cannot be swapped afterwards.
contract InferenceSettlement {
    struct Circuit {
        address verifier;
        bytes32 modelDigest;
        // SHA-256 of the weight-hash instances the setup recorded (hashed weights), or 0.
        bytes32 paramsHash;
        uint32 inputHashes;
        uint32 params;
        uint32 publicInputs;
        uint32 outputs;
    }

    struct Settlement {
        bytes32 setupDigest;
        bytes32 modelDigest;
        bytes32 inputCommitment;
        bytes32 receiptDigest;
        address submitter;
        uint64 blockNumber;
    }

    address public immutable owner;
    mapping(bytes32 => Circuit) public circuits;
    mapping(bytes32 => Settlement) public settlements;
    mapping(bytes32 => uint256[]) private _outputs;

    event CircuitRegistered(bytes32 indexed setupDigest, bytes32 modelDigest, address verifier);
    event Settled(
        bytes32 indexed id,
        bytes32 indexed setupDigest,
        bytes32 modelDigest,
        bytes32 inputCommitment,
        uint256[] outputs,
        bytes32 receiptDigest,
        address submitter
    );

    error NotOwner();
    error AlreadyRegistered(bytes32 setupDigest);
    error NoVerifierCode(address verifier);
    error UnknownCircuit(bytes32 setupDigest);
    error WrongInstanceCount(uint256 expected, uint256 got);
    error WrongWeights();
    error InvalidProof();
    error AlreadySettled(bytes32 id);

    constructor() {
        owner = msg.sender;
    }

    /// @notice Register the verifier of circuit `setupDigest` (once).
    function registerCircuit(bytes32 setupDigest, Circuit calldata circuit) external {
        if (msg.sender != owner) revert NotOwner();
        if (circuits[setupDigest].verifier != address(0)) revert AlreadyRegistered(setupDigest);
        if (circuit.verifier.code.length == 0) revert NoVerifierCode(circuit.verifier);
        circuits[setupDigest] = circuit;
        emit CircuitRegistered(setupDigest, circuit.modelDigest, circuit.verifier);
    }

    /// @notice The identity of a result: one circuit and one instance column settle once.
    function settlementId(bytes32 setupDigest, uint256[] calldata instances)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(setupDigest, instances));
    }

    /// @notice Settle the result `instances` of circuit `setupDigest`, proven by `proof`.
    /// `receiptDigest` names the inferproof receipt the result came with (recorded, not
    /// checked: the proof is the evidence).
    function settle(
        bytes32 setupDigest,
        bytes calldata proof,
        uint256[] calldata instances,
        bytes32 receiptDigest
    ) external returns (bytes32 id) {
        Circuit memory c = circuits[setupDigest];
        if (c.verifier == address(0)) revert UnknownCircuit(setupDigest);
        uint256 total = uint256(c.inputHashes) + c.params + c.publicInputs + c.outputs;
        if (instances.length != total) revert WrongInstanceCount(total, instances.length);
        uint256 b = uint256(c.inputHashes) + c.params;
        if (c.params != 0 && sha256(abi.encodePacked(instances[c.inputHashes:b])) != c.paramsHash) {
            revert WrongWeights();
        }
        id = settlementId(setupDigest, instances);
        if (settlements[id].blockNumber != 0) revert AlreadySettled(id);
        try IHalo2Verifier(c.verifier).verifyProof(proof, instances) returns (bool ok) {
            if (!ok) revert InvalidProof();
        } catch {
            revert InvalidProof();
        }
        _record(id, setupDigest, c, instances, receiptDigest);
    }

    /// @dev Record a verified result (a function of its own: fewer locals per frame).
    function _record(
        bytes32 id,
        bytes32 setupDigest,
        Circuit memory c,
        uint256[] calldata instances,
        bytes32 receiptDigest
    ) private {
        uint256 b = uint256(c.inputHashes) + c.params;
        uint256 d = b + c.publicInputs;
        // The input: its hashes (hashed inputs) and its values (public inputs), 32 bytes
        // each, big-endian, in instance order.
        bytes32 input = sha256(abi.encodePacked(instances[0:c.inputHashes], instances[b:d]));
        settlements[id] = Settlement(
            setupDigest, c.modelDigest, input, receiptDigest, msg.sender, uint64(block.number)
        );
        _outputs[id] = instances[d:];
        emit Settled(id, setupDigest, c.modelDigest, input, instances[d:], receiptDigest, msg.sender);
    }

    /// @notice The output instances (field elements) of settlement `id`.
    function outputsOf(bytes32 id) external view returns (uint256[] memory) {
        return _outputs[id];
    }
}
